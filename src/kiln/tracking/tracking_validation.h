// MLflow's validation rules for tracking entities (mlflow/utils/validation.py, 2.12), with its
// messages, so clients that match on them keep working. Private to src/kiln/tracking.
//
// Lengths count Unicode code points, as Python's len() does, not bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln::tracking::validation {

inline constexpr size_t kMaxEntityKeyLength = 250;
inline constexpr size_t kMaxParamValueLength = 6000;
inline constexpr size_t kMaxTagValueLength = 5000;
inline constexpr size_t kMaxExperimentNameLength = 500;
inline constexpr size_t kMaxExperimentTagValueLength = 5000;
inline constexpr size_t kMaxMetricsPerBatch = 1000;
inline constexpr size_t kMaxParamsPerBatch = 100;
inline constexpr size_t kMaxTagsPerBatch = 100;
inline constexpr size_t kMaxEntitiesPerBatch = 1000;
inline constexpr size_t kMaxDatasetNameLength = 500;
inline constexpr size_t kMaxDatasetDigestLength = 36;
inline constexpr size_t kMaxDatasetSourceLength = 65535;
inline constexpr size_t kMaxDatasetSchemaLength = 1048575;
inline constexpr size_t kMaxDatasetProfileLength = 16777215;
inline constexpr size_t kMaxInputTagKeyLength = 255;
inline constexpr size_t kMaxInputTagValueLength = 500;

// Number of code points in UTF-8 text (continuation bytes are not counted).
size_t Utf8Length(std::string_view text);
// The first `max_code_points` code points of `text`.
std::string Utf8Truncate(std::string_view text, size_t max_code_points);

// Python's posixpath.normpath, which MLflow uses to reject names that would alias as file paths.
std::string NormalizePosixPath(std::string_view path);

// `kind` is "metric", "param" or "tag": "Invalid metric name: 'bad*key'. Names may only contain
// alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/)."
// Also rejects names that normalise to another path ("a//b", "../x", "/x", "") and, as
// "<Kind> name '...' had length N, which exceeded length limit of 250", names over 250.
Status ValidateEntityName(std::string_view kind, std::string_view name);

// "<entity> '<first 250>' had length N, which exceeded length limit of L" when over `limit`.
Status ValidateLength(std::string_view entity, std::string_view value, size_t limit);

// "Invalid experiment name: ''" for an empty name; the 500-code-point limit.
Status ValidateExperimentName(std::string_view name);

// MLflow run statuses: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED.
Status ValidateRunStatus(std::string_view status);

// "adjective-noun-NNN", like MLflow's generated run names. Thread-safe.
std::string GenerateRunName();

}  // namespace kiln::tracking::validation
