// kiln init, kiln version.
#include <filesystem>
#include <iostream>
#include <system_error>

#include <CLI/CLI.hpp>

#include "kiln/cli/cli.h"
#include "kiln/cli/output.h"
#include "kiln/core/version.h"
#include "kiln/store/database.h"
#include "kiln/tracking/tracking_store.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

Status MakeFolder(const fs::path& folder) {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) return IoError("cannot create folder '" + folder.string() + "': " + error.message());
  return Status::Ok();
}

// Creates DIR/.kiln/{kiln.db, artifacts/, objects/}; an existing store is migrated and kept.
Status Init(Context& context, const std::string& dir) {
  std::error_code error;
  fs::path project = fs::absolute(dir, error).lexically_normal();
  if (error) return IoError("cannot resolve folder '" + dir + "': " + error.message());
  if (project.filename().empty()) project = project.parent_path();
  fs::path kiln_folder = project / ".kiln";
  fs::path db_path = kiln_folder / "kiln.db";
  bool existed = fs::exists(db_path, error);

  KILN_RETURN_IF_ERROR(MakeFolder(kiln_folder / "artifacts"));
  KILN_RETURN_IF_ERROR(MakeFolder(kiln_folder / "objects"));
  std::string uri = "sqlite://" + db_path.string();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<store::Database> database, store::Database::Open(uri));
  // Opening the tracking store creates the Default experiment "0".
  KILN_ASSIGN_OR_RETURN(auto tracking, tracking::TrackingStore::Open(database.get()));
  KILN_ASSIGN_OR_RETURN(int64_t schema_version, database->SchemaVersion());

  if (context.options.json) {
    PrintJson({{"path", kiln_folder.string()},
               {"database", uri},
               {"schema_version", schema_version},
               {"created", !existed}});
    return Status::Ok();
  }
  if (existed) {
    std::cout << "kiln store already initialized in " << kiln_folder.string()
              << " (schema version " << schema_version << ")\n";
    return Status::Ok();
  }
  std::cout << "Initialized kiln store in " << kiln_folder.string() << "\n"
            << RenderKeyValues({{"kiln.db", "metadata database (SQLite, schema version " +
                                                std::to_string(schema_version) + ")"},
                                {"artifacts/", "run artifacts"},
                                {"objects/", "data objects"}},
                               "  ");
  return Status::Ok();
}

}  // namespace

void AddInitCommand(CLI::App& app, Context& context) {
  CLI::App* init = app.add_subcommand("init", "Create a kiln store (.kiln/) in DIR (default: .)");
  auto dir = std::make_shared<std::string>(".");
  init->add_option("DIR", *dir, "Project folder");
  init->callback([&context, dir] { context.SetAction([&context, dir] { return Init(context, *dir); }); });
}

void AddVersionCommand(CLI::App& app, Context& context) {
  CLI::App* version = app.add_subcommand("version", "Print kiln's version");
  version->callback([&context] {
    context.SetAction([&context] {
      if (context.options.json) {
        PrintJson({{"version", KILN_VERSION}});
      } else {
        std::cout << "kiln " << KILN_VERSION << "\n";
      }
      return Status::Ok();
    });
  });
}

}  // namespace kiln::cli
