// kiln's data API end to end: uploads, commits, references, diff, merge, revert, export, files,
// profiles, validation and branch rules, gc and fsck, through a real kiln server over loopback
// HTTP on SQLite and PostgreSQL; and every client mistake answered with a 4xx.
#include "kiln/api/data_api.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/api/test_server.h"
#include "kiln/data/repository.h"
#include "kiln/http/client.h"
#include "kiln/http/message.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_database.h"

namespace kiln::api {
namespace {

using testing::Reply;
using testing::TestServer;

const std::string kData = "/api/kiln/v1/data";

// "id,amount,label\n" and `count` rows; `edits` replace whole rows by id.
std::string Rows(int count, const std::map<int, std::string>& edits = {}) {
  std::string out = "id,amount,label\n";
  for (int i = 0; i < count; ++i) {
    auto edit = edits.find(i);
    out += edit != edits.end() ? edit->second
                               : std::to_string(i) + "," + std::to_string(i * 2) + "," +
                                     std::string(1, static_cast<char>('a' + i % 3));
    out += "\n";
  }
  return out;
}

struct File {
  std::string file_name;
  std::string bytes;
  std::string key;    // "" for none
  std::string table;  // "" for none
};

class DataApiTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  std::string Upload(const std::string& bytes) {
    Reply reply = server_.Send("POST", kData + "/uploads", bytes, /*json_body=*/false);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.json.value("upload_id", "");
  }

  Reply Commit(const std::vector<File>& files, const std::string& message,
               const std::string& branch = "main", const std::vector<std::string>& remove = {}) {
    Json inputs = Json::array();
    for (const File& file : files) {
      Json input = {{"upload_id", Upload(file.bytes)}, {"file_name", file.file_name}};
      if (!file.key.empty()) input["key"] = file.key;
      if (!file.table.empty()) input["table"] = file.table;
      inputs.push_back(input);
    }
    return server_.Post(kData + "/commits", {{"branch", branch},
                                             {"message", message},
                                             {"author", "tester"},
                                             {"inputs", inputs},
                                             {"remove", remove}});
  }

  // Commits and returns the new commit's id; fails the test unless 200.
  std::string CommitOk(const std::vector<File>& files, const std::string& message,
                       const std::string& branch = "main") {
    Reply reply = Commit(files, message, branch);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.json["commit"].value("id", "");
  }

  Json GetJson(const std::string& path) {
    Reply reply = server_.Get(kData + path);
    EXPECT_EQ(reply.status, 200) << path << " -> " << reply.body;
    return reply.json;
  }

  TestServer server_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Backends, DataApiTest, ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

TEST_P(DataApiTest, CommitsUploadedFilesAndServesThemBackByteForByte) {
  std::string csv = Rows(50);
  static constexpr char kPng[] = "\x89PNG\r\n\x1a\n\0\xff binary";
  std::string binary(kPng, sizeof(kPng) - 1);  // with the NUL inside, without the final one
  Reply commit = Commit({{"credit.csv", csv, "id", ""}, {"cat.png", binary, "", ""}}, "jan");
  ASSERT_EQ(commit.status, 200) << commit.body;
  EXPECT_FALSE(commit.json["unchanged"].get<bool>());
  ASSERT_EQ(commit.json["stats"].size(), 2u);
  std::string id = commit.json["commit"]["id"];

  Json shown = GetJson("/commits/main");
  EXPECT_EQ(shown["id"], id);
  EXPECT_EQ(shown["message"], "jan");
  EXPECT_EQ(shown["author"], "tester");
  ASSERT_EQ(shown["entries"].size(), 2u);
  EXPECT_EQ(shown["entries"][0]["name"], "cat.png");
  EXPECT_EQ(shown["entries"][0]["format"], "bytes");
  EXPECT_EQ(shown["entries"][1]["name"], "credit");
  EXPECT_EQ(shown["entries"][1]["file_name"], "credit.csv");
  EXPECT_EQ(shown["entries"][1]["rows"], 50);
  EXPECT_EQ(shown["entries"][1]["key"], "id");

  Reply file = server_.Get(kData + "/files?ref=main&name=credit");
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, csv);
  Reply image = server_.Get(kData + "/files?ref=" + id + "&name=cat.png");
  EXPECT_EQ(image.status, 200);
  EXPECT_EQ(image.body, binary);
  EXPECT_EQ(image.content_type, "application/octet-stream");

  Reply jsonl = server_.Get(kData + "/export?ref=main&table=credit&format=jsonl");
  EXPECT_EQ(jsonl.status, 200);
  EXPECT_EQ(jsonl.content_type, "application/x-ndjson");
  EXPECT_EQ(Json::parse(jsonl.body.substr(0, jsonl.body.find('\n'))),
            Json::parse(R"({"id":0,"amount":0,"label":"a"})"));
  Reply exported = server_.Get(kData + "/export?ref=main&table=credit");
  EXPECT_EQ(exported.body, csv);
  EXPECT_EQ(exported.content_type, "text/csv; charset=utf-8");

  Json profile = GetJson("/profile?ref=main&table=credit");
  EXPECT_EQ(profile["rows"], 50);
  EXPECT_EQ(profile["columns"][1]["max"], 98);

  Json log = GetJson("/log?ref=main");
  ASSERT_EQ(log["commits"].size(), 1u);
  EXPECT_EQ(log["commits"][0]["id"], id);
  Json refs = GetJson("/refs");
  ASSERT_EQ(refs["refs"].size(), 1u);
  EXPECT_EQ(refs["refs"][0]["name"], "main");
  EXPECT_EQ(refs["refs"][0]["commit_id"], id);

  // The same files again make no commit, and the uploads are gone after each commit.
  Reply again = Commit({{"credit.csv", csv, "", ""}, {"cat.png", binary, "", ""}}, "again");
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(again.json["unchanged"].get<bool>());
  EXPECT_EQ(GetJson("/log")["commits"].size(), 1u);
}

TEST_P(DataApiTest, FilesAndExportsAreStreamedInChunks) {
  std::string csv = Rows(40000);
  ASSERT_GT(csv.size(), 2 * http::kStreamPieceBytes);
  CommitOk({{"t.csv", csv, "", ""}}, "big");
  http::Client client;
  for (std::string path : {"/files?ref=main&name=t", "/export?ref=main&table=t"}) {
    std::string body;
    size_t pieces = 0;
    auto reply = client.Download(server_.base_url() + kData + path, [&](std::string_view bytes) {
      body.append(bytes);
      ++pieces;
      return Status::Ok();
    });
    ASSERT_TRUE(reply.ok()) << path << ": " << reply.status().ToString();
    EXPECT_EQ(reply->status, 200) << path;
    EXPECT_EQ(reply->Header("transfer-encoding"), "chunked") << path;
    EXPECT_GT(pieces, 1u) << path;
    EXPECT_TRUE(body == csv) << path << ": the streamed body differs";
  }
  // Failures found before the first byte still get their usual error reply.
  Reply missing = server_.Get(kData + "/export?ref=nope&table=t");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(missing.json.value("kiln_code", ""), "NOT_FOUND") << missing.body;
}

TEST_P(DataApiTest, LargeFilesArriveInPartsAtTheirOffsets) {
  std::string csv = Rows(3000);
  size_t half = csv.size() / 2;
  Reply first = server_.Send("POST", kData + "/uploads", csv.substr(0, half), false);
  ASSERT_EQ(first.status, 200) << first.body;
  std::string id = first.json["upload_id"];
  EXPECT_EQ(first.json["size"], half);
  // A part that does not follow the bytes so far is refused and changes nothing.
  Reply gap = server_.Send("POST", kData + "/uploads/" + id + "?offset=1", "x", false);
  EXPECT_EQ(gap.status, 409) << gap.body;
  Reply second = server_.Send("POST", kData + "/uploads/" + id + "?offset=" + std::to_string(half),
                              csv.substr(half), false);
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.json["size"], csv.size());
  Reply commit = server_.Post(
      kData + "/commits",
      {{"message", "parts"}, {"inputs", {{{"upload_id", id}, {"file_name", "big.csv"}}}}});
  ASSERT_EQ(commit.status, 200) << commit.body;
  EXPECT_EQ(server_.Get(kData + "/files?ref=main&name=big").body, csv);
  // A committed upload is consumed.
  EXPECT_EQ(server_.Send("POST", kData + "/uploads/" + id + "?offset=" + std::to_string(csv.size()),
                         "more", false)
                .status,
            404);
}

TEST_P(DataApiTest, FolderUploadsKeepTheirRelativePaths) {
  Json inputs = Json::array();
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"images/cat.png", "meow"}, {"images/dogs/rex.png", "woof"}}) {
    inputs.push_back({{"upload_id", Upload(bytes)}, {"file_name", name}});
  }
  Reply commit = server_.Post(kData + "/commits", {{"message", "images"}, {"inputs", inputs}});
  ASSERT_EQ(commit.status, 200) << commit.body;
  Json shown = GetJson("/commits/main");
  ASSERT_EQ(shown["entries"].size(), 2u);
  EXPECT_EQ(shown["entries"][0]["name"], "images/cat.png");
  EXPECT_EQ(shown["entries"][1]["name"], "images/dogs/rex.png");
  EXPECT_EQ(server_.Get(kData + "/files?ref=main&name=" + http::PercentEncode("images/dogs/rex.png"))
                .body,
            "woof");
}

TEST_P(DataApiTest, ReferencesResolveInPathsAndQueries) {
  std::string first = CommitOk({{"t.csv", Rows(5), "", ""}}, "one");
  ASSERT_EQ(server_.Post(kData + "/tags", {{"name", "v1.0"}, {"ref", "main"}}).status, 200);
  std::string second = CommitOk({{"t.csv", Rows(6), "", ""}}, "two");
  EXPECT_EQ(GetJson("/commits/main~1")["id"], first);
  EXPECT_EQ(GetJson("/commits/main%5E")["id"], first);
  EXPECT_EQ(GetJson("/commits/v1.0")["id"], first);
  EXPECT_EQ(GetJson("/commits/" + second.substr(0, 8))["id"], second);
  EXPECT_EQ(GetJson("/commits/" + http::PercentEncode("main@{2999-01-01}"))["id"], second);
  EXPECT_EQ(GetJson("/log?ref=v1.0")["commits"].size(), 1u);
  EXPECT_EQ(GetJson("/log?ref=main&limit=1")["commits"].size(), 1u);

  ASSERT_EQ(server_.Post(kData + "/branches", {{"name", "feature/x"}, {"from", "v1.0"}}).status,
            200);
  EXPECT_EQ(GetJson("/commits/feature/x")["id"], first);
  EXPECT_EQ(server_.Send("DELETE", kData + "/branches/feature/x").status, 200);
  EXPECT_EQ(server_.Get(kData + "/commits/feature/x").status, 404);
  EXPECT_EQ(server_.Send("DELETE", kData + "/tags/v1.0").status, 200);
  EXPECT_EQ(server_.Send("DELETE", kData + "/tags/v1.0").status, 404);
}

TEST_P(DataApiTest, DiffListsKeyedRowChanges) {
  CommitOk({{"t.csv", Rows(10), "id", ""}}, "one");
  CommitOk({{"t.csv", Rows(11, {{3, "3,999,a"}}), "", ""}}, "two");
  Json diff = GetJson("/diff?a=main~1&b=main");
  ASSERT_EQ(diff["tables"].size(), 1u);
  const Json& table = diff["tables"][0];
  EXPECT_EQ(table["table"], "t");
  EXPECT_EQ(table["status"], "modified");
  EXPECT_EQ(table["rows_added"], 1);
  EXPECT_EQ(table["rows_changed"], 1);
  EXPECT_EQ(table["rows_removed"], 0);
  EXPECT_EQ(GetJson("/diff?a=main~1&b=main&max_rows=0")["tables"][0]["rows"].size(), 0u);
}

TEST_P(DataApiTest, MergeConflictIs409ListingBothValuesAndAStrategyResolvesIt) {
  CommitOk({{"t.csv", Rows(20), "id", ""}}, "base");
  ASSERT_EQ(server_.Post(kData + "/branches", {{"name", "dev"}}).status, 200);
  std::string ours = CommitOk({{"t.csv", Rows(20, {{7, "7,1,a"}}), "", ""}}, "ours");
  CommitOk({{"t.csv", Rows(20, {{7, "7,2,b"}}), "", ""}}, "theirs", "dev");

  Reply conflict = server_.Post(kData + "/merge", {{"source", "dev"}, {"into", "main"}});
  EXPECT_EQ(conflict.status, 409) << conflict.body;
  EXPECT_EQ(conflict.json["error_code"], "RESOURCE_CONFLICT");
  EXPECT_EQ(conflict.json["kiln_code"], "CONFLICT");
  ASSERT_EQ(conflict.json["conflicts"].size(), 1u);
  EXPECT_EQ(conflict.json["conflicts"][0]["key"], "7");
  EXPECT_EQ(conflict.json["conflicts"][0]["ours"]["amount"], 1);
  EXPECT_EQ(conflict.json["conflicts"][0]["theirs"]["amount"], 2);
  EXPECT_EQ(GetJson("/commits/main")["id"], ours);

  Reply bad = server_.Post(kData + "/merge", {{"source", "dev"}, {"strategy", "mine"}});
  EXPECT_EQ(bad.status, 400);
  Reply resolved =
      server_.Post(kData + "/merge", {{"source", "dev"}, {"strategy", "theirs"}, {"message", "m"}});
  ASSERT_EQ(resolved.status, 200) << resolved.body;
  EXPECT_TRUE(resolved.json["conflicts"].empty());
  EXPECT_EQ(resolved.json["commit"]["message"], "m");
  EXPECT_NE(server_.Get(kData + "/export?ref=main&table=t").body.find("\n7,2,b\n"),
            std::string::npos);
  Reply again = server_.Post(kData + "/merge", {{"source", "dev"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(again.json["up_to_date"].get<bool>());
}

TEST_P(DataApiTest, RevertUndoesACommit) {
  CommitOk({{"t.csv", Rows(5), "", ""}}, "one");
  CommitOk({{"t.csv", Rows(6), "", ""}}, "two");
  Reply revert = server_.Post(kData + "/revert", {{"ref", "main"}, {"author", "tester"}});
  ASSERT_EQ(revert.status, 200) << revert.body;
  EXPECT_EQ(server_.Get(kData + "/files?ref=main&name=t").body, Rows(5));
  EXPECT_EQ(GetJson("/log")["commits"].size(), 3u);
}

TEST_P(DataApiTest, ValidateReportsEveryViolation) {
  CommitOk({{"t.csv", Rows(10, {{2, "2,-4,a"}, {5, "5,-1,z"}}), "", ""}}, "one");
  std::string rules =
      "tables:\n  t:\n    row_count: {min: 100}\n    columns:\n      amount: {min: 0}\n";
  Reply reply = server_.Post(kData + "/validate", {{"ref", "main"}, {"rules", rules}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  const Json& violations = reply.json["violations"];
  ASSERT_EQ(violations.size(), 2u) << reply.body;
  std::set<std::string> rule_names;
  for (const Json& violation : violations) rule_names.insert(violation["rule"]);
  EXPECT_EQ(rule_names, (std::set<std::string>{"row_count", "min"}));
  for (const Json& violation : violations) {
    if (violation["rule"] != "min") continue;
    EXPECT_EQ(violation["column"], "amount");
    EXPECT_EQ(violation["violating_rows"], 2);
  }
  // No rules given and none attached: the repository's answer (an error naming the missing
  // rules, or no violations), never a 500.
  Reply none = server_.Post(kData + "/validate", {{"ref", "main"}});
  EXPECT_LT(none.status, 500) << none.body;
  Reply malformed =
      server_.Post(kData + "/validate", {{"ref", "main"}, {"rules", "tables: [\n"}, {"rules_name", "r.yaml"}});
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  EXPECT_NE(malformed.json.value("message", "").find("r.yaml"), std::string::npos) << malformed.body;
}

TEST_P(DataApiTest, BranchRulesRefuseACommitAsValidationFailed) {
  CommitOk({{"t.csv", Rows(10), "", ""}}, "one");
  std::string rules = "tables:\n  t:\n    columns:\n      amount: {min: 0}\n";
  Reply none = server_.Get(kData + "/rules/main");
  EXPECT_EQ(none.status, 200);
  EXPECT_FALSE(none.json.contains("rules"));
  ASSERT_EQ(server_.Send("PUT", kData + "/rules/main", Json{{"rules", rules}}.dump()).status, 200);
  EXPECT_EQ(GetJson("/rules/main")["rules"], rules);

  Reply refused = Commit({{"t.csv", Rows(10, {{3, "3,-5,a"}}), "", ""}}, "bad");
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.json["kiln_code"], "VALIDATION_FAILED");
  EXPECT_NE(refused.json.value("message", "").find("amount"), std::string::npos);
  EXPECT_EQ(GetJson("/log")["commits"].size(), 1u);

  ASSERT_EQ(server_.Send("DELETE", kData + "/rules/main").status, 200);
  EXPECT_FALSE(GetJson("/rules/main").contains("rules"));
  EXPECT_EQ(Commit({{"t.csv", Rows(10, {{3, "3,-5,a"}}), "", ""}}, "now fine").status, 200);
}

TEST_P(DataApiTest, MalformedCsvIs400NamingTheClientsFileAndChangesNothing) {
  std::string head = CommitOk({{"credit.csv", Rows(5), "", ""}}, "good");
  Reply bad = Commit({{"credit.csv", "id,amount\n1,2\n3\n", "", ""}}, "bad");
  EXPECT_EQ(bad.status, 400) << bad.body;
  std::string message = bad.json.value("message", "");
  EXPECT_EQ(message.rfind("credit.csv:3:", 0), 0u) << message;  // not the server's staging path
  EXPECT_EQ(message.find("uploads"), std::string::npos) << message;
  EXPECT_EQ(GetJson("/commits/main")["id"], head);
  EXPECT_EQ(GetJson("/log")["commits"].size(), 1u);
}

TEST_P(DataApiTest, GcAndFsckReportOnTheStore) {
  CommitOk({{"t.csv", Rows(5), "", ""}}, "one");
  Json fsck = GetJson("/fsck");
  EXPECT_EQ(fsck["commits_checked"], 1);
  EXPECT_TRUE(fsck["problems"].empty()) << fsck.dump();
  Reply gc = server_.Post(kData + "/gc", {{"retention_ms", 0}, {"dry_run", true}});
  ASSERT_EQ(gc.status, 200) << gc.body;
  EXPECT_EQ(gc.json["commits_removed"], 0);
  EXPECT_EQ(server_.Post(kData + "/gc", {{"retention_ms", -1}}).status, 400);
}

struct BadRequest {
  std::string method;
  std::string path;
  std::string body;
  int status;
};

TEST_P(DataApiTest, ClientMistakesAre4xxNever500) {
  CommitOk({{"t.csv", Rows(5), "", ""}, {"blob.bin", "bytes", "", ""}}, "one");
  std::string upload = Upload("a,b\n1,2\n");
  const std::vector<BadRequest> cases = {
      {"GET", "/commits/nope", "", 404},
      {"GET", "/commits/main~9", "", 404},
      {"GET", "/commits/", "", 400},
      {"GET", "/log?ref=main&limit=x", "", 400},
      {"GET", "/log?ref=main&limit=-1", "", 400},
      {"GET", "/diff?a=main", "", 400},
      {"GET", "/diff?a=main&b=nope", "", 404},
      {"GET", "/diff?a=main&b=main&max_rows=1e9", "", 400},
      {"GET", "/export?ref=main&table=t&format=xml", "", 400},
      {"GET", "/export?ref=main&table=nope", "", 404},
      {"GET", "/export?ref=main&table=blob.bin", "", 400},
      {"GET", "/files?ref=main", "", 400},
      {"GET", "/files?ref=main&name=nope", "", 404},
      {"GET", "/profile?ref=main&table=blob.bin", "", 400},
      {"POST", "/commits", "not json", 400},
      {"POST", "/commits", "[]", 400},
      {"POST", "/commits", R"({"inputs": 3})", 400},
      {"POST", "/commits", R"({"inputs": [7]})", 400},
      {"POST", "/commits", R"({"inputs": [{"upload_id": "x"}]})", 400},
      {"POST", "/commits", R"({"inputs": [{"upload_id": "../../kiln.db", "file_name": "a.csv"}]})",
       404},
      {"POST", "/commits",
       R"({"inputs": [{"upload_id": ")" + upload + R"(", "file_name": "../a.csv"}]})", 400},
      {"POST", "/commits",
       R"({"inputs": [{"upload_id": ")" + upload + R"(", "file_name": "/etc/a.csv"}]})", 400},
      {"POST", "/commits",
       R"({"branch": "nope", "inputs": [{"upload_id": ")" + upload + R"(", "file_name": "a.csv"}]})",
       404},
      {"POST", "/commits", R"({"remove": ["nope"]})", 404},
      {"POST", "/commits", R"({})", 400},
      {"POST", "/uploads/0123456789abcdef0123456789abcdef?offset=0", "x", 404},
      {"POST", "/uploads/..%2F..%2Fkiln.db?offset=0", "x", 404},
      {"POST", "/uploads/" + upload, "x", 400},
      {"POST", "/branches", R"({"from": "main"})", 400},
      {"POST", "/branches", R"({"name": "main"})", 400},
      {"POST", "/branches", R"({"name": "x", "from": "nope"})", 404},
      {"POST", "/branches", R"({"name": "bad name!"})", 400},
      {"DELETE", "/branches/nope", "", 404},
      {"POST", "/tags", R"({"name": ["v1"]})", 400},
      {"POST", "/merge", R"({})", 400},
      {"POST", "/merge", R"({"source": "nope"})", 404},
      {"POST", "/revert", R"({"ref": "nope"})", 404},
      {"POST", "/validate", R"({"ref": "main", "rules": 3})", 400},
      {"PUT", "/rules/main", R"({"rules": "tables: [\n"})", 400},
      {"PUT", "/rules/main", R"({})", 400},
      {"GET", "/rules/nope", "", 404},
      {"POST", "/gc", R"({"retention_ms": "soon"})", 400},
      {"PATCH", "/refs", "", 405},
      {"GET", "/nothing", "", 404},
  };
  for (const BadRequest& bad : cases) {
    Reply reply = server_.Send(bad.method, kData + bad.path, bad.body);
    EXPECT_EQ(reply.status, bad.status) << bad.method << " " << bad.path << " " << bad.body
                                        << " -> " << reply.body;
  }
  EXPECT_EQ(GetJson("/log")["commits"].size(), 1u);
}

// Expired uploads go away: with a time to live of zero, the next upload removes the last one.
TEST(DataApiUploadsTest, ExpiredUploadsAreRemoved) {
  kiln::testing::TestDatabase database(store::Backend::kSqlite);
  kiln::testing::TempDir dir;
  auto repository = data::Repository::Open(database.db(), dir.Join("objects"));
  ASSERT_TRUE(repository.ok()) << repository.status().ToString();
  http::Router router;
  DataApiOptions options;
  options.uploads_dir = dir.Join("uploads");
  options.upload_ttl_ms = 0;
  RegisterDataRoutes(router, **repository, options);
  auto post = [&router](const std::string& target, const std::string& body) {
    http::Request request;
    request.method = "POST";
    request.target = target;
    size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = http::ParseQuery(target.substr(question + 1));
    request.body = body;
    http::Response response;
    router.Dispatch(request, response);
    return response;
  };
  http::Response first = post(kData + "/uploads", "abc");
  ASSERT_EQ(first.status, 200) << first.body;
  std::string id = Json::parse(first.body)["upload_id"];
  EXPECT_EQ(post(kData + "/uploads/" + id + "?offset=3", "d").status, 200);
  ASSERT_EQ(post(kData + "/uploads", "xyz").status, 200);
  EXPECT_EQ(post(kData + "/uploads/" + id + "?offset=4", "e").status, 404);
}

}  // namespace
}  // namespace kiln::api
