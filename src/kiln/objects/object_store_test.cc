#include "kiln/objects/object_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/file_util.h"
#include "tests/support/temp_dir.h"

namespace kiln::objects {
namespace {

uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// CSV-like rows, one per line, `bytes` long or a little more.
std::vector<std::string> CsvRows(size_t bytes, uint64_t seed) {
  static const char* kCities[] = {"Berlin", "Lagos", "Lima", "Osaka", "Perth", "Quito"};
  std::vector<std::string> rows;
  size_t total = 0;
  for (size_t id = 0; total < bytes; ++id) {
    std::string row = std::to_string(id) + "," + kCities[NextRandom(seed) % 6] + "," +
                      std::to_string(NextRandom(seed) % 100000) + "." +
                      std::to_string(NextRandom(seed) % 100) + "," +
                      std::to_string(NextRandom(seed) % 2) + "\n";
    total += row.size();
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string Join(const std::vector<std::string>& rows) {
  std::string out;
  for (const std::string& row : rows) out += row;
  return out;
}

// The rows with every hundredth one replaced.
std::string EditOnePercent(std::vector<std::string> rows, uint64_t seed) {
  for (size_t i = 50; i < rows.size(); i += 100) {
    rows[i] = std::to_string(i) + ",Edited," + std::to_string(NextRandom(seed) % 100000) + ".5,1\n";
  }
  return Join(rows);
}

std::string RandomBytes(size_t bytes, uint64_t seed) {
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(NextRandom(seed) >> 56);
  return out;
}

std::string ObjectPath(const ObjectStore& store, const Digest& id) {
  std::string hex = id.Hex();
  return store.root() + "/" + hex.substr(0, 2) + "/" + hex.substr(2);
}

std::string ReadAll(const std::string& path) {
  Result<std::string> contents = ReadFile(path);
  EXPECT_TRUE(contents.ok()) << contents.status().ToString();
  return contents.ok() ? *contents : std::string();
}

void WriteAll(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<ObjectStore>> opened = ObjectStore::OpenLocal(dir_.Join("objects"));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  // Puts `raw` and returns its id.
  Digest PutOk(std::string_view raw, const PutOptions& options = {}) {
    Digest id = Sha256Of(raw);
    Result<ObjectInfo> info = store_->Put(id, raw, options);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return id;
  }

  testing::TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, PutThenGetRoundTripsEveryEncoding) {
  struct Case {
    const char* name;
    std::string raw;
    Encoding expected;
  };
  const Case cases[] = {
      {"empty", "", Encoding::kRaw},
      {"one byte", "x", Encoding::kRaw},
      {"text", Join(CsvRows(1 << 20, 1)), Encoding::kZstd},
      {"random bytes are stored raw", RandomBytes(1 << 20, 2), Encoding::kRaw},
  };
  for (const Case& c : cases) {
    Digest id = Sha256Of(c.raw);
    Result<ObjectInfo> put = store_->Put(id, c.raw);
    ASSERT_TRUE(put.ok()) << c.name << ": " << put.status().ToString();
    EXPECT_EQ(put->encoding, c.expected) << c.name;
    EXPECT_EQ(put->raw_size, c.raw.size()) << c.name;
    EXPECT_FALSE(put->base.has_value());
    Result<std::string> got = store_->Get(id, /*verify=*/true);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status().ToString();
    EXPECT_TRUE(*got == c.raw) << c.name;
    Result<ObjectInfo> stat = store_->Stat(id);
    ASSERT_TRUE(stat.ok()) << stat.status().ToString();
    EXPECT_EQ(stat->encoding, c.expected);
    EXPECT_EQ(stat->raw_size, c.raw.size());
    EXPECT_EQ(stat->stored_size, put->stored_size);
    EXPECT_EQ(std::filesystem::file_size(ObjectPath(*store_, id)), put->stored_size);
    EXPECT_TRUE(store_->Verify(id).ok());
  }
  EXPECT_TRUE(store_->Sync().ok());
}

TEST_F(ObjectStoreTest, DeltaOfAOnePercentEditIsAFractionOfPlainZstd) {
  std::vector<std::string> rows = CsvRows(4 << 20, 3);
  std::string base = Join(rows);
  std::string edited = EditOnePercent(rows, 4);
  Digest base_id = PutOk(base);
  Digest edited_id = Sha256Of(edited);

  // With the base's bytes given, and without (the store loads them).
  for (bool give_base_raw : {true, false}) {
    PutOptions options;
    options.base = base_id;
    if (give_base_raw) options.base_raw = base;
    Result<ObjectInfo> delta = store_->Put(edited_id, edited, options);
    ASSERT_TRUE(delta.ok()) << delta.status().ToString();
    EXPECT_EQ(delta->encoding, Encoding::kZstdDelta);
    EXPECT_EQ(delta->base, base_id);
    uint64_t delta_size = delta->stored_size;

    Digest other = Sha256Of(edited + "x");  // same bytes plain, under another id
    Result<ObjectInfo> plain = store_->Put(other, edited + "x");
    ASSERT_TRUE(plain.ok());
    EXPECT_LT(delta_size * 10, plain->stored_size)
        << "delta " << delta_size << " bytes, plain zstd " << plain->stored_size;

    Result<std::string> got = store_->Get(edited_id, /*verify=*/true);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == edited);
    Result<ObjectInfo> stat = store_->Stat(edited_id);
    ASSERT_TRUE(stat.ok());
    EXPECT_EQ(stat->base, base_id);
  }
}

TEST_F(ObjectStoreTest, DeltaChainsResolveThroughEveryBase) {
  std::vector<std::string> rows = CsvRows(1 << 20, 5);
  std::vector<std::string> versions = {Join(rows)};
  for (uint64_t seed = 6; seed < 9; ++seed) versions.push_back(EditOnePercent(rows, seed));
  std::vector<Digest> ids = {PutOk(versions[0])};
  for (size_t i = 1; i < versions.size(); ++i) {
    PutOptions options;
    options.base = ids.back();
    ids.push_back(PutOk(versions[i], options));
  }
  // versions[3] -> [2] -> [1] -> [0]: a chain of depth 3.
  for (size_t i = 0; i < versions.size(); ++i) {
    Result<std::string> got = store_->Get(ids[i], /*verify=*/true);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == versions[i]) << "version " << i;
  }
  // A missing base anywhere in the chain is reported against the object asked for.
  ASSERT_TRUE(store_->Remove(ids[1]).ok());
  Result<std::string> broken = store_->Get(ids[3]);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Contains(broken.status().message(), ids[3].Hex())) << broken.status().message();
  EXPECT_TRUE(Contains(broken.status().message(), ids[1].Hex())) << broken.status().message();
}

TEST_F(ObjectStoreTest, DeltaRejectsItselfAndMissingBases) {
  std::string raw = "a,b\n1,2\n";
  Digest id = Sha256Of(raw);
  PutOptions self;
  self.base = id;
  self.base_raw = raw;
  EXPECT_EQ(store_->Put(id, raw, self).status().code(), StatusCode::kInvalidArgument);

  std::string missing = "never stored";
  PutOptions options;
  options.base = Sha256Of(missing);
  EXPECT_EQ(store_->Put(id, raw, options).status().code(), StatusCode::kNotFound);
  options.base_raw = missing;
  EXPECT_EQ(store_->Put(id, raw, options).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->Exists(id));
}

TEST_F(ObjectStoreTest, CyclicDeltaChainIsCorruptionNotAHang) {
  std::string a = Join(CsvRows(20000, 9));
  std::string b = a + "1,2\n";
  Digest a_id = PutOk(a);
  PutOptions on_a;
  on_a.base = a_id;
  Digest b_id = PutOk(b, on_a);
  PutOptions on_b;  // a crash-and-rewrite could produce this; the data layer never does
  on_b.base = b_id;
  on_b.base_raw = b;
  PutOk(a, on_b);
  Result<std::string> got = store_->Get(a_id);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Contains(got.status().message(), "loops")) << got.status().message();
}

TEST_F(ObjectStoreTest, CorruptFilesAreInternalErrorsNamingTheObject) {
  std::string text = Join(CsvRows(100000, 10));
  std::string random = RandomBytes(4096, 11);
  struct Case {
    const char* name;
    const std::string* raw;
    // Rewrites the stored file.
    std::function<std::string(std::string)> corrupt;
    const char* message_part;
  };
  const Case cases[] = {
      {"bad magic", &text,
       [](std::string f) {
         f[0] = 'X';
         return f;
       },
       "magic"},
      {"unknown encoding", &text,
       [](std::string f) {
         f[4] = 7;
         return f;
       },
       "encoding"},
      {"absurd raw size", &text,
       [](std::string f) {
         f[12] = 0x40;
         return f;
       },
       "limit"},
      {"raw size off by one", &text,
       [](std::string f) {
         f[5] ^= 1;
         return f;
       },
       "size"},
      {"shorter than the header", &text, [](std::string f) { return f.substr(0, 7); }, "header"},
      {"truncated payload", &text, [](std::string f) { return f.substr(0, f.size() - 100); },
       "truncated"},
      {"trailing garbage", &text, [](std::string f) { return f + "junk"; }, "trailing"},
      {"flipped payload byte", &text,
       [](std::string f) {
         f[f.size() / 2] ^= 0x20;
         return f;
       },
       "zstd"},
      {"empty file", &text, [](std::string) { return std::string(); }, "header"},
      {"raw payload too short", &random, [](std::string f) { return f.substr(0, f.size() - 1); },
       "payload"},
  };
  for (const Case& c : cases) {
    Digest id = PutOk(*c.raw);
    std::string path = ObjectPath(*store_, id);
    WriteAll(path, c.corrupt(ReadAll(path)));
    Result<std::string> got = store_->Get(id);
    ASSERT_FALSE(got.ok()) << c.name;
    EXPECT_EQ(got.status().code(), StatusCode::kInternal) << c.name;
    EXPECT_TRUE(Contains(got.status().message(), id.Hex())) << c.name;
    EXPECT_TRUE(Contains(got.status().message(), c.message_part))
        << c.name << ": " << got.status().message();
    Status verified = store_->Verify(id);
    EXPECT_EQ(verified.code(), StatusCode::kInternal) << c.name;
    EXPECT_TRUE(Contains(verified.message(), id.Hex())) << c.name;
    ASSERT_TRUE(store_->Remove(id).ok());
  }
}

TEST_F(ObjectStoreTest, VerifyCatchesRawBytesThatNoLongerMatchTheirId) {
  std::string random = RandomBytes(4096, 12);
  Digest id = PutOk(random);
  std::string path = ObjectPath(*store_, id);
  std::string file = ReadAll(path);
  file[100] ^= 1;
  WriteAll(path, file);
  EXPECT_TRUE(store_->Get(id, /*verify=*/false).ok());  // raw bytes carry no checksum
  Result<std::string> verified = store_->Get(id, /*verify=*/true);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Contains(verified.status().message(), "hashes to"));
  EXPECT_EQ(store_->Verify(id).code(), StatusCode::kInternal);
}

TEST_F(ObjectStoreTest, PutReplacesAGarbageFileUnderTheSameId) {
  std::string raw = Join(CsvRows(50000, 13));
  Digest id = Sha256Of(raw);
  std::string hex = id.Hex();
  ASSERT_TRUE(MakeDirs(store_->root() + "/" + hex.substr(0, 2)).ok());
  WriteAll(ObjectPath(*store_, id), "KOB1 left by a crash before Sync");
  EXPECT_FALSE(store_->Verify(id).ok());
  ASSERT_TRUE(store_->Put(id, raw).ok());
  EXPECT_TRUE(store_->Verify(id).ok());
  EXPECT_TRUE(*store_->Get(id) == raw);
}

TEST_F(ObjectStoreTest, ExistsStatForEachAndRemoveSeeTheSameObjects) {
  std::set<Digest> ids;
  for (int i = 0; i < 40; ++i) ids.insert(PutOk("object " + std::to_string(i)));
  Digest missing = Sha256Of("missing");
  EXPECT_FALSE(store_->Exists(missing));
  EXPECT_EQ(store_->Stat(missing).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get(missing).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->Remove(missing).ok());  // missing is fine

  // Strays that are not objects: a temp file and an oddly named file.
  Digest first = *ids.begin();
  std::string folder = store_->root() + "/" + first.Hex().substr(0, 2);
  WriteAll(folder + "/.tmp-crashed", "partial");
  WriteAll(folder + "/README", "not an object");

  std::set<Digest> listed;
  ASSERT_TRUE(store_
                  ->ForEach([&](const Digest& id, uint64_t stored_size, int64_t mtime_ms) {
                    EXPECT_TRUE(store_->Exists(id));
                    EXPECT_EQ(stored_size, store_->Stat(id)->stored_size);
                    EXPECT_GT(mtime_ms, 1600000000000);
                    listed.insert(id);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(listed, ids);

  // Removing while walking (what gc does) is allowed.
  ASSERT_TRUE(
      store_->ForEach([&](const Digest& id, uint64_t, int64_t) { return store_->Remove(id); })
          .ok());
  for (const Digest& id : ids) EXPECT_FALSE(store_->Exists(id));

  // An error from the callback stops the walk and comes back.
  PutOk("one more");
  Status stopped =
      store_->ForEach([](const Digest&, uint64_t, int64_t) { return Conflict("stop here"); });
  EXPECT_EQ(stopped.code(), StatusCode::kConflict);
}

TEST_F(ObjectStoreTest, ObjectsLiveInTwoHexDigitFolders) {
  Digest id = PutOk("layout");
  std::string hex = id.Hex();
  EXPECT_TRUE(std::filesystem::is_regular_file(store_->root() + "/" + hex.substr(0, 2) + "/" +
                                               hex.substr(2)));
  for (const auto& entry :
       std::filesystem::directory_iterator(store_->root() + "/" + hex.substr(0, 2))) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << "temp file left behind";
  }
  EXPECT_TRUE(store_->Sync().ok());
  EXPECT_TRUE(store_->Sync().ok());  // nothing new: still fine
}

TEST_F(ObjectStoreTest, RemoveStaleTempsKeepsFreshTempsAndObjects) {
  Digest id = PutOk("kept");
  std::string folder = store_->root() + "/" + id.Hex().substr(0, 2);
  std::string stale = folder + "/.tmp-stale";
  std::string fresh = folder + "/.tmp-fresh";
  WriteAll(stale, "x");
  WriteAll(fresh, "y");
  struct timespec old_times[2] = {{1000000000, 0}, {1000000000, 0}};  // 2001
  ASSERT_EQ(::utimensat(AT_FDCWD, stale.c_str(), old_times, 0), 0);

  ASSERT_TRUE(store_->RemoveStaleTemps(/*older_than_ms=*/3600 * 1000).ok());
  EXPECT_FALSE(PathExists(stale));
  EXPECT_TRUE(PathExists(fresh));
  EXPECT_TRUE(store_->Exists(id));
  // Objects are never temps, however old.
  ASSERT_EQ(::utimensat(AT_FDCWD, ObjectPath(*store_, id).c_str(), old_times, 0), 0);
  ASSERT_TRUE(store_->RemoveStaleTemps(0).ok());
  EXPECT_TRUE(store_->Exists(id));
}

TEST_F(ObjectStoreTest, OpenLocalCreatesTheFolderAndReopensIt) {
  std::string root = dir_.Join("nested/deeper/objects");
  Result<std::unique_ptr<ObjectStore>> opened = ObjectStore::OpenLocal(root + "/");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ((*opened)->root(), root);
  Digest id = Sha256Of("persisted");
  ASSERT_TRUE((*opened)->Put(id, "persisted").ok());
  ASSERT_TRUE((*opened)->Sync().ok());
  opened->reset();
  Result<std::unique_ptr<ObjectStore>> again = ObjectStore::OpenLocal(root);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->Get(id, true), "persisted");
}

TEST_F(ObjectStoreTest, ConcurrentPutsAndGetsFromFourThreads) {
  std::vector<std::string> rows = CsvRows(256 << 10, 14);
  std::string shared_base = Join(rows);
  Digest shared_id = PutOk(shared_base);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 12;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Deltas (even i) are the same objects in every thread, so all four race on one id;
        // plain objects are each thread's own.
        uint64_t seed = i % 2 == 0 ? 1000 + i : 2000 + t * kPerThread + i;
        std::string raw = EditOnePercent(rows, seed);
        Digest id = Sha256Of(raw);
        PutOptions options;
        if (i % 2 == 0) {
          options.base = shared_id;
          if (i % 4 == 0) options.base_raw = shared_base;
        }
        if (!store_->Put(id, raw, options).ok()) ++failures;
        Result<std::string> got = store_->Get(id, /*verify=*/true);
        if (!got.ok() || *got != raw) ++failures;
        Result<std::string> base = store_->Get(shared_id);
        if (!base.ok() || *base != shared_base) ++failures;
      }
      if (!store_->Sync().ok()) ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  int count = 0;
  ASSERT_TRUE(store_
                  ->ForEach([&](const Digest& id, uint64_t, int64_t) {
                    ++count;
                    return store_->Verify(id);
                  })
                  .ok());
  EXPECT_GT(count, kThreads * kPerThread / 2);
}

}  // namespace
}  // namespace kiln::objects
