// Proxied artifacts end to end: upload, download, list and delete through a real kiln server, the
// run-relative listing and download, and path traversal attempts, which must all be refused.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/api/test_server.h"
#include "kiln/core/file_util.h"
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
  // Raw "../" that curl would have squashed before sending.
  for (std::string path : {"/../secret.txt", "/a/../../secret.txt", "//etc/passwd"}) {
    http::Response response = DispatchRaw("GET", std::string(kArtifacts) + path);
    EXPECT_EQ(response.status, 400) << path << " -> " << response.body;
    response = DispatchRaw("PUT", std::string(kArtifacts) + path, "pwned");
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

INSTANTIATE_TEST_SUITE_P(Backends, ArtifactsTest, ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::api
