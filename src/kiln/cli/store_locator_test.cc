#include "kiln/cli/store_locator.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

class StoreLocatorTest : public ::testing::Test {
 protected:
  StoreLocatorTest() {
    project_ = dir_.Join("project");
    fs::create_directories(project_ + "/.kiln");
    fs::create_directories(project_ + "/src/deep");
  }
  StoreInputs Inputs(std::string cwd) {
    StoreInputs inputs;
    inputs.cwd = std::move(cwd);
    return inputs;
  }
  kiln::testing::TempDir dir_;
  std::string project_;
};

TEST_F(StoreLocatorTest, FindsTheNearestKilnFolderAbove) {
  Result<StoreLocation> location = ResolveStore(Inputs(project_ + "/src/deep"));
  ASSERT_TRUE(location.ok()) << location.status().ToString();
  EXPECT_EQ(location->kind, StoreLocation::Kind::kLocal);
  EXPECT_EQ(location->uri, "sqlite://" + project_ + "/.kiln/kiln.db");
  EXPECT_EQ(location->artifact_root, project_ + "/.kiln/artifacts");
}

TEST_F(StoreLocatorTest, NoStoreAnywhereTellsTheUserToRunInit) {
  fs::create_directories(dir_.Join("elsewhere"));
  Result<StoreLocation> location = ResolveStore(Inputs(dir_.Join("elsewhere")));
  ASSERT_FALSE(location.ok());
  EXPECT_EQ(location.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(location.status().message(), "no kiln store found: run `kiln init` or pass --store");
}

TEST_F(StoreLocatorTest, FlagWinsOverEnvironmentWhichWinsOverTheFolder) {
  StoreInputs inputs = Inputs(project_);
  inputs.env_store = "http://127.0.0.1:5001/";
  Result<StoreLocation> from_env = ResolveStore(inputs);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->kind, StoreLocation::Kind::kRemote);
  EXPECT_EQ(from_env->uri, "http://127.0.0.1:5001");

  inputs.store_flag = "other.db";
  Result<StoreLocation> from_flag = ResolveStore(inputs);
  ASSERT_TRUE(from_flag.ok());
  EXPECT_EQ(from_flag->uri, "sqlite://" + project_ + "/other.db");
  EXPECT_EQ(from_flag->artifact_root, project_ + "/artifacts");
}

TEST_F(StoreLocatorTest, AcceptsTheFormsOfALocalStore) {
  struct Case {
    std::string store;
    std::string expected_uri;
  };
  const Case cases[] = {
      {"sqlite:///abs/x.db", "sqlite:///abs/x.db"},
      {"sqlite:rel.db", "sqlite://" + project_ + "/rel.db"},
      {".kiln", "sqlite://" + project_ + "/.kiln/kiln.db"},
      {project_, "sqlite://" + project_ + "/.kiln/kiln.db"},
      {"sub/../data.db", "sqlite://" + project_ + "/data.db"},
  };
  for (const Case& c : cases) {
    StoreInputs inputs = Inputs(project_);
    inputs.store_flag = c.store;
    Result<StoreLocation> location = ResolveStore(inputs);
    ASSERT_TRUE(location.ok()) << c.store << ": " << location.status().ToString();
    EXPECT_EQ(location->uri, c.expected_uri) << c.store;
  }
}

TEST_F(StoreLocatorTest, RejectsWhatIsNotAStore) {
  const std::string bad[] = {"ftp://host/x", "missing-folder", project_ + "/src"};
  for (const std::string& store : bad) {
    StoreInputs inputs = Inputs(project_);
    inputs.store_flag = store;
    Result<StoreLocation> location = ResolveStore(inputs);
    ASSERT_FALSE(location.ok()) << store;
    EXPECT_EQ(location.status().code(), StatusCode::kInvalidArgument) << store;
  }
}

TEST_F(StoreLocatorTest, PostgresNeedsAnObjectsFolder) {
  StoreInputs inputs = Inputs(project_);
  inputs.store_flag = "postgresql://kiln:secret@db/kiln";
  Result<StoreLocation> missing = ResolveStore(inputs);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--objects"), std::string::npos);
  EXPECT_EQ(missing.status().message().find("secret"), std::string::npos);

  inputs.env_objects = "shared";
  Result<StoreLocation> location = ResolveStore(inputs);
  ASSERT_TRUE(location.ok());
  EXPECT_EQ(location->uri, "postgresql://kiln:secret@db/kiln");
  EXPECT_EQ(location->artifact_root, project_ + "/shared/artifacts");

  inputs.objects_flag = "/mnt/kiln";
  EXPECT_EQ(ResolveStore(inputs)->artifact_root, "/mnt/kiln/artifacts");
}

}  // namespace
}  // namespace kiln::cli
