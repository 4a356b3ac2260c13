// Proxied artifacts end to end: upload, download, list and delete through a real kiln server, the
// run-relative listing and download, and path traversal attempts, which must all be refused.
// Also the UI's downloads (/get-artifact, /model-versions/get-artifact), streamed downloads of
// large files, and multipart uploads.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/api/test_server.h"
#include "kiln/core/file_util.h"
#include "kiln/core/hash.h"
#include "kiln/http/client.h"
#include "kiln/http/message.h"

namespace kiln::api {
namespace {

using testing::Reply;
using testing::TestServer;

constexpr char kArtifacts[] = "/api/2.0/mlflow-artifacts/artifacts";

class ArtifactsTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  TestServer server_{GetParam()};

  // Creates a run in a new experiment; returns {experiment_id, run_id}.
  std::pair<std::string, std::string> CreateRun() {
    Json experiment = server_.Rpc("POST", "/experiments/create", {{"name", "artifacts"}});
    std::string experiment_id = experiment["experiment_id"];
    Json run = server_.Rpc("POST", "/runs/create", {{"experiment_id", experiment_id}});
    return {experiment_id, run["run"]["info"]["run_id"]};
  }

  // Dispatches without a socket, for raw targets that an HTTP client would normalise ("../").
  http::Response DispatchRaw(const std::string& method, const std::string& raw_path,
                             const std::string& body = "") {
    http::Request request;
    request.method = method;
    request.target = raw_path;
    size_t question = raw_path.find('?');
    request.path = http::PercentDecode(raw_path.substr(0, question), false);
    if (question != std::string::npos) request.query = http::ParseQuery(raw_path.substr(question + 1));
    request.body = body;
    http::Response response;
    server_.app().Dispatch(request, response);
    return response;
  }
};

TEST_P(ArtifactsTest, PutGetListDeleteRoundTrip) {
  std::string body("binary\0bytes\xff", 13);
  Reply put = server_.Send("PUT", std::string(kArtifacts) + "/1/abc/artifacts/model/data.bin", body,
                           /*json_body=*/false);
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.body, "{}");
  EXPECT_TRUE(PathExists(server_.artifact_root() + "/1/abc/artifacts/model/data.bin"));

  Reply get = server_.Get(std::string(kArtifacts) + "/1/abc/artifacts/model/data.bin");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, body);
  // HEAD is GET without the body.
  Reply head = server_.Send("HEAD", std::string(kArtifacts) + "/1/abc/artifacts/model/data.bin");
  EXPECT_EQ(head.status, 200);

  server_.Send("PUT", std::string(kArtifacts) + "/1/abc/artifacts/readme.txt", "hello", false);
  Reply list = server_.Get(std::string(kArtifacts) + "?path=1/abc/artifacts");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.json, Json::parse(R"({"files":[{"path":"model","is_dir":true},
                                                 {"path":"readme.txt","is_dir":false,"file_size":5}]})"));
  Reply empty = server_.Get(std::string(kArtifacts) + "?path=nothing/here");
  EXPECT_EQ(empty.body, "{}");

  Reply removed = server_.Send("DELETE", std::string(kArtifacts) + "/1/abc/artifacts/model/data.bin");
  EXPECT_EQ(removed.status, 200);
  EXPECT_EQ(server_.Get(std::string(kArtifacts) + "/1/abc/artifacts/model/data.bin").status, 404);
}

TEST_P(ArtifactsTest, PutReplacesAnExistingFile) {
  std::string path = std::string(kArtifacts) + "/0/r/artifacts/f.txt";
  server_.Send("PUT", path, "first", false);
  server_.Send("PUT", path, "second", false);
  EXPECT_EQ(server_.Get(path).body, "second");
}

TEST_P(ArtifactsTest, AFileInTheWayOfAFolderIs400AtAnyDepth) {
  std::string base = std::string(kArtifacts) + "/1/abc/artifacts";
  ASSERT_EQ(server_.Send("PUT", base + "/a/b", "a file", false).status, 200);
  // Found by the request fuzzer: the file is the grandparent of the folder the PUT needs.
  Reply nested = server_.Send("PUT", base + "/a/b/c/d/e.txt", "x", false);
  EXPECT_EQ(nested.status, 400) << nested.body;
  EXPECT_EQ(nested.json.value("error_code", ""), "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(server_.Send("PUT", base + "/a/b/c", "x", false).status, 400);
}

TEST_P(ArtifactsTest, APathUnderAFileNamesNothing) {
  std::string base = std::string(kArtifacts) + "/1/abc/artifacts";
  ASSERT_EQ(server_.Send("PUT", base + "/model/MLmodel", "flavors: {}", false).status, 200);
  // Found by the request fuzzer: deleting below a file answered 500 ("Not a directory").
  Reply removed = server_.Send("DELETE", base + "/model/MLmodel/more/x");
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(removed.body, "{}");
  EXPECT_EQ(server_.Get(base + "/model/MLmodel").body, "flavors: {}");
  Reply get = server_.Get(base + "/model/MLmodel/more/x");
  EXPECT_EQ(get.status, 404) << get.body;
  Reply list = server_.Get(std::string(kArtifacts) + "?path=1/abc/artifacts/model/MLmodel/more");
  EXPECT_LT(list.status, 500) << list.body;
}

// A name is written under a temp name 17 bytes longer first: names up to 238 bytes are stored;
// longer ones are the request's fault (found by the request fuzzer: a 255-byte name made the
// temp name too long for the file system, and PUT answered 500).
TEST_P(ArtifactsTest, LongNamesUpToTheLimitAreStoredAndLongerOnesRefused) {
  std::string base = std::string(kArtifacts) + "/1/abc/artifacts/";
  const std::string longest(238, 'n');
  ASSERT_EQ(server_.Send("PUT", base + longest, "kept", false).status, 200);
  EXPECT_EQ(server_.Get(base + longest).body, "kept");
  for (size_t size : {239, 255, 256, 300}) {
    const std::string name(size, 'n');
    Reply put = server_.Send("PUT", base + "d/" + name, "x", false);
    EXPECT_EQ(put.status, 400) << size << ": " << put.body;
    EXPECT_EQ(put.json.value("message", ""), "Invalid path") << size;
    Reply get = server_.Get(base + name);
    EXPECT_EQ(get.status, 400) << size << ": " << get.body;
  }
}

TEST_P(ArtifactsTest, MissingFileIs404) {
  Reply reply = server_.Get(std::string(kArtifacts) + "/0/none/artifacts/x.txt");
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(reply.json.value("error_code", ""), "RESOURCE_DOES_NOT_EXIST");
}

TEST_P(ArtifactsTest, ListRunArtifactsIsRelativeToTheRunRoot) {
  auto [experiment_id, run_id] = CreateRun();
  std::string run_root = std::string(kArtifacts) + "/" + experiment_id + "/" + run_id + "/artifacts";
  ASSERT_EQ(server_.Send("PUT", run_root + "/model/MLmodel", "flavors: {}", false).status, 200);
  ASSERT_EQ(server_.Send("PUT", run_root + "/metrics.json", "{}", false).status, 200);

  Json root = server_.Rpc("GET", "/artifacts/list?run_id=" + run_id);
  EXPECT_EQ(root["root_uri"], "mlflow-artifacts:/" + experiment_id + "/" + run_id + "/artifacts");
  EXPECT_EQ(root["files"], Json::parse(R"([{"path":"metrics.json","is_dir":false,"file_size":2},
                                            {"path":"model","is_dir":true}])"));
  Json model = server_.Rpc("GET", "/artifacts/list?run_id=" + run_id + "&path=model");
  EXPECT_EQ(model["files"],
            Json::parse(R"([{"path":"model/MLmodel","is_dir":false,"file_size":11}])"));

  // The UI's download link.
  Reply file = server_.Get("/get-artifact?path=model/MLmodel&run_uuid=" + run_id);
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "flavors: {}");

  Reply unknown = server_.Get("/api/2.0/mlflow/artifacts/list?run_id=" + std::string(32, 'c'));
  EXPECT_EQ(unknown.status, 404);
}

TEST_P(ArtifactsTest, TraversalAttemptsAreRefused) {
  // A file outside the root that a successful traversal would reach.
  std::string outside = std::filesystem::path(server_.artifact_root()).parent_path().string() +
                        "/secret.txt";
  ASSERT_TRUE(WriteFileAtomic(outside, "secret").ok());

  const std::vector<std::string> encoded_paths = {
      "/%2e%2e/secret.txt",
      "/a/%2e%2e/%2e%2e/secret.txt",
      "/a/..%2f..%2fsecret.txt",
      "/%2E%2E%2Fsecret.txt",
      "/%2fetc/passwd",
      "/a%5c..%5c..%5csecret.txt",
      "/a/%00/x",
      "/a/%252e%252e/x",
  };
  for (const std::string& path : encoded_paths) {
    Reply get = server_.Get(std::string(kArtifacts) + path);
    EXPECT_EQ(get.status, 400) << path << " -> " << get.body;
    EXPECT_EQ(get.json.value("message", ""), "Invalid path") << path;
    Reply put = server_.Send("PUT", std::string(kArtifacts) + path, "pwned", false);
    EXPECT_EQ(put.status, 400) << path << " -> " << put.body;
    Reply del = server_.Send("DELETE", std::string(kArtifacts) + path);
    EXPECT_EQ(del.status, 400) << path << " -> " << del.body;
  }
  // Raw "../" that curl would have squashed before sending; names that are not UTF-8 (they
  // would go back to clients in JSON).
  for (std::string path : {"/../secret.txt", "/a/../../secret.txt", "//etc/passwd",
                           "/1/abc/artifacts/\xed\xed.bin", "/1/abc/artifacts/a\xff/b"}) {
    http::Response response = DispatchRaw("GET", std::string(kArtifacts) + path);
    EXPECT_EQ(response.status, 400) << path << " -> " << response.body;
    response = DispatchRaw("PUT", std::string(kArtifacts) + path, "pwned");
    EXPECT_EQ(response.status, 400) << path << " -> " << response.body;
    response = DispatchRaw("POST", "/api/2.0/mlflow-artifacts/mpu/create" + path,
                           R"({"path": "x.bin", "num_parts": 2})");
    EXPECT_EQ(response.status, 400) << path << " -> " << response.body;
  }
  for (std::string query : {"?path=..", "?path=../", "?path=%2e%2e%2f", "?path=/etc",
                                    "?path=a/../../"}) {
    Reply list = server_.Get(std::string(kArtifacts) + query);
    EXPECT_EQ(list.status, 400) << query << " -> " << list.body;
  }
  auto [experiment_id, run_id] = CreateRun();
  for (std::string query : {"&path=../../..", "&path=%2e%2e/%2e%2e", "&path=/etc"}) {
    Reply list = server_.Get("/api/2.0/mlflow/artifacts/list?run_id=" + run_id + query);
    EXPECT_EQ(list.status, 400) << query << " -> " << list.body;
    Reply file = server_.Get("/get-artifact?run_id=" + run_id + query);
    EXPECT_EQ(file.status, 400) << query << " -> " << file.body;
  }
  Result<std::string> still = ReadFile(outside);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(*still, "secret");
}

TEST_P(ArtifactsTest, SymlinkOutOfTheRootIsRefused) {
  std::string root = server_.artifact_root();
  std::string outside = std::filesystem::path(root).parent_path().string() + "/elsewhere";
  ASSERT_TRUE(MakeDirs(outside).ok());
  ASSERT_TRUE(WriteFileAtomic(outside + "/secret.txt", "secret").ok());
  ASSERT_TRUE(MakeDirs(root).ok());
  std::filesystem::create_directory_symlink(outside, root + "/link");
  Reply get = server_.Get(std::string(kArtifacts) + "/link/secret.txt");
  EXPECT_EQ(get.status, 400) << get.body;
  Reply put = server_.Send("PUT", std::string(kArtifacts) + "/link/new.txt", "x", false);
  EXPECT_EQ(put.status, 400) << put.body;
  EXPECT_FALSE(PathExists(outside + "/new.txt"));
}

TEST_P(ArtifactsTest, AjaxApiPrefixServesArtifacts) {
  server_.Send("PUT", "/ajax-api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/a.txt", "abc", false);
  Reply get = server_.Get(std::string(kArtifacts) + "/0/x/artifacts/a.txt");
  EXPECT_EQ(get.body, "abc");
  Reply ajax = server_.Get("/ajax-api/2.0/mlflow-artifacts/artifacts?path=0/x/artifacts");
  EXPECT_EQ(ajax.json["files"][0]["path"], "a.txt");
}

// The resident set size of this process, in bytes.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

TEST_P(ArtifactsTest, LargeDownloadIsStreamedByteIdenticalInBoundedMemory) {
  // 48 MiB written in 1 MiB pieces, so that this test itself never holds the file.
  constexpr size_t kMiB = 1024 * 1024;
  constexpr size_t kPieces = 48;
  std::string folder = server_.artifact_root() + "/0/big/artifacts";
  ASSERT_TRUE(MakeDirs(folder).ok());
  Sha256 written_hash;
  {
    std::ofstream out(folder + "/weights.bin", std::ios::binary);
    std::string piece(kMiB, '\0');
    for (size_t i = 0; i < kPieces; ++i) {
      for (size_t j = 0; j < piece.size(); j += 8) piece[j] = static_cast<char>(i * 31 + j / 8);
      out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      written_hash.Update(piece);
    }
  }
  const std::string expected = written_hash.Finish().Hex();

  for (std::string path : {std::string(kArtifacts) + "/0/big/artifacts/weights.bin",
                           std::string("/ajax-api/2.0/mlflow-artifacts/artifacts/0/big/artifacts/"
                                       "weights.bin")}) {
    http::Client client;
    Sha256 received_hash;
    size_t received = 0;
    const int64_t before = ResidentBytes();
    int64_t peak = before;
    auto response = client.Download(server_.base_url() + path, [&](std::string_view bytes) {
      received_hash.Update(bytes);
      received += bytes.size();
      peak = std::max(peak, ResidentBytes());
      return Status::Ok();
    });
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->Header("content-length"), std::to_string(kPieces * kMiB));
    EXPECT_EQ(response->Header("content-type"), "application/octet-stream");
    EXPECT_EQ(received, kPieces * kMiB);
    EXPECT_EQ(received_hash.Finish().Hex(), expected);
    // Server and client share this process: whole-body buffering would add at least 48 MiB.
    // (Not under AddressSanitizer, whose quarantine keeps freed pieces resident by design, nor
    // ThreadSanitizer, whose shadow memory grows with every byte touched; the release build's
    // run of this test checks the bound.)
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    EXPECT_LT(peak - before, static_cast<int64_t>(16 * kMiB)) << "RSS grew by " << (peak - before);
#else
    (void)peak;
#endif
  }
}

TEST_P(ArtifactsTest, ClientLeavingMidDownloadLeavesTheServerServing) {
  std::string folder = server_.artifact_root() + "/0/cut/artifacts";
  ASSERT_TRUE(MakeDirs(folder).ok());
  ASSERT_TRUE(WriteFileAtomic(folder + "/f.bin", std::string(8 * 1024 * 1024, 'q')).ok());
  const std::string url = server_.base_url() + std::string(kArtifacts) + "/0/cut/artifacts/f.bin";
  for (int i = 0; i < 3; ++i) {
    http::Client client;
    size_t received = 0;
    auto response = client.Download(url, [&](std::string_view bytes) {
      received += bytes.size();
      return received > 1024 * 1024 ? FailedPrecondition("enough") : Status::Ok();
    });
    EXPECT_EQ(response.status().code(), StatusCode::kFailedPrecondition);
  }
  Reply whole = server_.Get(std::string(kArtifacts) + "/0/cut/artifacts/f.bin");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body.size(), 8u * 1024 * 1024);
}

TEST_P(ArtifactsTest, UiGetArtifactServesRunFilesAtTheRootAndUnderAjax) {
  auto [experiment_id, run_id] = CreateRun();
  std::string run_root = std::string(kArtifacts) + "/" + experiment_id + "/" + run_id + "/artifacts";
  ASSERT_EQ(server_.Send("PUT", run_root + "/plots/loss.png", "png bytes", false).status, 200);

  struct Case {
    std::string target;
    int status;
    std::string error_code;  // "" for 200
  };
  const std::vector<Case> cases = {
      {"/get-artifact?path=plots/loss.png&run_id=" + run_id, 200, ""},
      {"/ajax-api/2.0/mlflow/get-artifact?path=plots/loss.png&run_uuid=" + run_id, 200, ""},
      {"/get-artifact?path=plots/none.png&run_id=" + run_id, 404, "RESOURCE_DOES_NOT_EXIST"},
      {"/get-artifact?path=plots/loss.png&run_id=" + std::string(32, 'f'), 404,
       "RESOURCE_DOES_NOT_EXIST"},
      {"/get-artifact?path=../../../etc/passwd&run_id=" + run_id, 400, "INVALID_PARAMETER_VALUE"},
      {"/get-artifact?path=%2e%2e%2f%2e%2e%2fx&run_id=" + run_id, 400, "INVALID_PARAMETER_VALUE"},
      {"/get-artifact?path=plots&run_id=" + run_id, 400, "INVALID_PARAMETER_VALUE"},
      {"/get-artifact?run_id=" + run_id, 400, "INVALID_PARAMETER_VALUE"},
  };
  for (const Case& c : cases) {
    Reply reply = server_.Get(c.target);
    EXPECT_EQ(reply.status, c.status) << c.target << " -> " << reply.body;
    if (c.status == 200) {
      EXPECT_EQ(reply.body, "png bytes");
      EXPECT_EQ(reply.content_type, "image/png");
    } else {
      EXPECT_EQ(reply.json.value("error_code", ""), c.error_code) << c.target;
    }
  }
}

TEST_P(ArtifactsTest, UiGetArtifactServesModelVersionFiles) {
  auto [experiment_id, run_id] = CreateRun();
  std::string source = "mlflow-artifacts:/" + experiment_id + "/" + run_id + "/artifacts/model";
  std::string run_root = std::string(kArtifacts) + "/" + experiment_id + "/" + run_id + "/artifacts";
  ASSERT_EQ(server_.Send("PUT", run_root + "/model/MLmodel", "flavors: {}", false).status, 200);
  server_.Rpc("POST", "/registered-models/create", {{"name", "churn"}});
  server_.Rpc("POST", "/model-versions/create",
              {{"name", "churn"}, {"source", source}, {"run_id", run_id}});

  struct Case {
    std::string target;
    int status;
    std::string error_code;
  };
  const std::vector<Case> cases = {
      {"/model-versions/get-artifact?name=churn&version=1&path=MLmodel", 200, ""},
      {"/ajax-api/2.0/mlflow/model-versions/get-artifact?name=churn&version=1&path=MLmodel", 200,
       ""},
      {"/model-versions/get-artifact?name=churn&version=1&path=nothing", 404,
       "RESOURCE_DOES_NOT_EXIST"},
      {"/model-versions/get-artifact?name=churn&version=7&path=MLmodel", 404,
       "RESOURCE_DOES_NOT_EXIST"},
      {"/model-versions/get-artifact?name=nobody&version=1&path=MLmodel", 404,
       "RESOURCE_DOES_NOT_EXIST"},
      {"/model-versions/get-artifact?name=churn&version=1&path=../MLmodel", 400,
       "INVALID_PARAMETER_VALUE"},
      {"/model-versions/get-artifact?name=churn&version=1&path=%2e%2e/%2e%2e/x", 400,
       "INVALID_PARAMETER_VALUE"},
      {"/model-versions/get-artifact?name=churn&version=1", 400, "INVALID_PARAMETER_VALUE"},
  };
  for (const Case& c : cases) {
    Reply reply = server_.Get(c.target);
    EXPECT_EQ(reply.status, c.status) << c.target << " -> " << reply.body;
    if (c.status == 200) {
      EXPECT_EQ(reply.body, "flavors: {}");
    } else {
      EXPECT_EQ(reply.json.value("error_code", ""), c.error_code) << c.target;
    }
  }
}

class MultipartUploadTest : public ArtifactsTest {
 protected:
  static constexpr char kMpu[] = "/api/2.0/mlflow-artifacts/mpu";

  Json Create(const std::string& folder, const std::string& local_file, int parts) {
    Reply reply = server_.Send("POST", std::string(kMpu) + "/create/" + folder,
                               Json{{"path", local_file}, {"num_parts", parts}}.dump());
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.json;
  }

  // PUTs `bytes` to the credential's URL, as an MLflow client does; returns the ETag header.
  std::string PutPart(const Json& credential, const std::string& bytes) {
    http::Client client;
    auto response = client.Send("PUT", credential["url"].get<std::string>(), bytes);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return "";
    EXPECT_EQ(response->status, 200) << response->body;
    return response->Header("etag");
  }
};

TEST_P(MultipartUploadTest, PartsBecomeOneArtifactInPartOrder) {
  Json created = Create("0/run1/artifacts/model", "/home/me/weights.bin", 3);
  ASSERT_EQ(created["credentials"].size(), 3u);
  EXPECT_EQ(created["credentials"][0]["part_number"], 1);
  EXPECT_EQ(created["credentials"][2]["headers"], Json::object());
  const std::string upload_id = created["upload_id"];
  const std::vector<std::string> bytes = {std::string(300000, 'a'), std::string("middle\0part", 11),
                                          "end"};
  Json parts = Json::array();
  for (int i : {2, 0, 1}) {  // uploaded out of order, as parallel clients do
    std::string etag = PutPart(created["credentials"][i], bytes[i]);
    EXPECT_EQ(etag, "\"" + Sha256Hex(bytes[i]) + "\"");
    parts.push_back({{"part_number", i + 1}, {"etag", etag}, {"url", created["credentials"][i]["url"]}});
  }
  // Nothing is visible before completion, and the uploads folder never is.
  EXPECT_EQ(server_.Get(std::string(kArtifacts) + "/0/run1/artifacts/model/weights.bin").status,
            404);
  Reply completed = server_.Send(
      "POST", std::string(kMpu) + "/complete/0/run1/artifacts/model",
      Json{{"path", "weights.bin"}, {"upload_id", upload_id}, {"parts", parts}}.dump());
  EXPECT_EQ(completed.status, 200) << completed.body;
  EXPECT_EQ(completed.body, "{}");

  Reply file = server_.Get(std::string(kArtifacts) + "/0/run1/artifacts/model/weights.bin");
  EXPECT_EQ(file.status, 200);
  EXPECT_TRUE(file.body == bytes[0] + bytes[1] + bytes[2]) << "the artifact differs";
  EXPECT_FALSE(PathExists(server_.artifact_root() + "/.mpu/" + upload_id));
  Reply root = server_.Get(std::string(kArtifacts) + "?path=");
  EXPECT_EQ(root.json, Json::parse(R"({"files":[{"path":"0","is_dir":true}]})"));
  // Completing twice: the upload is gone.
  Reply again = server_.Send(
      "POST", std::string(kMpu) + "/complete/0/run1/artifacts/model",
      Json{{"path", "weights.bin"}, {"upload_id", upload_id}, {"parts", parts}}.dump());
  EXPECT_EQ(again.status, 404) << again.body;
}

TEST_P(MultipartUploadTest, WrongEtagsAndMissingPartsAreRefusedAndLeaveNothing) {
  Json created = Create("0/r/artifacts", "f.bin", 2);
  const std::string upload_id = created["upload_id"];
  std::string etag1 = PutPart(created["credentials"][0], "one");
  std::string etag2 = PutPart(created["credentials"][1], "two");
  auto complete = [&](const Json& parts) {
    return server_.Send("POST", std::string(kMpu) + "/complete/0/r/artifacts",
                        Json{{"path", "f.bin"}, {"upload_id", upload_id}, {"parts", parts}}.dump());
  };
  struct Case {
    std::string name;
    Json parts;
  };
  const std::vector<Case> cases = {
      {"an etag of other bytes",
       Json::array({{{"part_number", 1}, {"etag", etag2}}, {{"part_number", 2}, {"etag", etag2}}})},
      {"a part listed twice",
       Json::array({{{"part_number", 1}, {"etag", etag1}}, {{"part_number", 1}, {"etag", etag1}}})},
      {"a part number past num_parts", Json::array({{{"part_number", 3}, {"etag", etag1}}})},
      {"no parts", Json::array()},
  };
  for (const Case& c : cases) {
    Reply reply = complete(c.parts);
    EXPECT_EQ(reply.status, 400) << c.name << " -> " << reply.body;
    EXPECT_EQ(reply.json.value("error_code", ""), "INVALID_PARAMETER_VALUE") << c.name;
  }
  EXPECT_EQ(server_.Get(std::string(kArtifacts) + "/0/r/artifacts/f.bin").status, 404);
  Reply listing = server_.Get(std::string(kArtifacts) + "?path=0/r/artifacts");
  EXPECT_EQ(listing.body, "{}") << "a temp file was left behind";

  // A part never uploaded.
  Json second = Create("0/r/artifacts", "g.bin", 2);
  std::string only = PutPart(second["credentials"][0], "only");
  Reply missing = server_.Send(
      "POST", std::string(kMpu) + "/complete/0/r/artifacts",
      Json{{"path", "g.bin"},
           {"upload_id", second["upload_id"]},
           {"parts", Json::array({{{"part_number", 1}, {"etag", only}},
                                  {{"part_number", 2}, {"etag", only}}})}}
          .dump());
  EXPECT_EQ(missing.status, 400) << missing.body;

  // The right list completes.
  Reply good = complete(Json::array({{{"part_number", 2}, {"etag", etag2}},
                                     {{"part_number", 1}, {"etag", etag1}}}));
  EXPECT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(server_.Get(std::string(kArtifacts) + "/0/r/artifacts/f.bin").body, "onetwo");
}

TEST_P(MultipartUploadTest, AbortRemovesTheParts) {
  Json created = Create("0/r/artifacts", "f.bin", 1);
  const std::string upload_id = created["upload_id"];
  PutPart(created["credentials"][0], "bytes");
  ASSERT_TRUE(PathExists(server_.artifact_root() + "/.mpu/" + upload_id + "/part-1"));
  Reply aborted = server_.Send("POST", std::string(kMpu) + "/abort/0/r/artifacts",
                               Json{{"path", "f.bin"}, {"upload_id", upload_id}}.dump());
  EXPECT_EQ(aborted.status, 200) << aborted.body;
  EXPECT_FALSE(PathExists(server_.artifact_root() + "/.mpu/" + upload_id));
  http::Client client;
  auto late = client.Send("PUT", created["credentials"][0]["url"].get<std::string>(), "late");
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->status, 404);
  Reply again = server_.Send("POST", std::string(kMpu) + "/abort/0/r/artifacts",
                             Json{{"path", "f.bin"}, {"upload_id", upload_id}}.dump());
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.json.value("error_code", ""), "RESOURCE_DOES_NOT_EXIST");
}

TEST_P(MultipartUploadTest, PathsAreValidatedAsTheArtifactPutDoes) {
  struct Case {
    std::string folder;
    std::string local_file;
    int num_parts;
  };
  const std::vector<Case> cases = {
      {"%2e%2e/x", "f.bin", 1},        {"a/%2e%2e/%2e%2e/x", "f.bin", 1},
      {"a", "..", 1},                  {"a", "dir/", 1},
      {".mpu", "f.bin", 1},            {"", ".mpu", 1},
      {"a%5c..%5cb", "f.bin", 1},      {"a", "f.bin", 0},
      {"a", "f.bin", 10001},
  };
  for (const Case& c : cases) {
    Reply reply = server_.Send("POST", std::string(kMpu) + "/create/" + c.folder,
                               Json{{"path", c.local_file}, {"num_parts", c.num_parts}}.dump());
    EXPECT_EQ(reply.status, 400) << c.folder << " " << c.local_file << " -> " << reply.body;
  }
  // The uploads folder cannot be reached through the artifact service either.
  Json created = Create("0/r/artifacts", "f.bin", 1);
  std::string part = std::string(kArtifacts) + "/.mpu/" + created["upload_id"].get<std::string>() +
                     "/part-1";
  EXPECT_EQ(server_.Send("PUT", part, "forged", false).status, 400);
  EXPECT_EQ(server_.Get(part).status, 400);
  // Part URLs only take upload ids and part numbers.
  http::Client client;
  for (std::string tail : {std::string("/parts/../../x/1"), "/parts/" + std::string(32, 'a') + "/1",
                           "/parts/" + created["upload_id"].get<std::string>() + "/2",
                           "/parts/" + created["upload_id"].get<std::string>() + "/x"}) {
    auto reply = client.Send("PUT", server_.base_url() + kMpu + tail, "x");
    ASSERT_TRUE(reply.ok());
    EXPECT_GE(reply->status, 400) << tail;
  }
  // The ajax prefix serves the same RPCs.
  Reply ajax = server_.Send("POST", "/ajax-api/2.0/mlflow-artifacts/mpu/create/0/r/artifacts",
                            Json{{"path", "h.bin"}, {"num_parts", 1}}.dump());
  EXPECT_EQ(ajax.status, 200) << ajax.body;
  EXPECT_NE(ajax.json["credentials"][0]["url"].get<std::string>().find(
                "/ajax-api/2.0/mlflow-artifacts/mpu/parts/"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, MultipartUploadTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

INSTANTIATE_TEST_SUITE_P(Backends, ArtifactsTest, ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::api
