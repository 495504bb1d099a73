// Reading a SqliteStore's file when its directory or files cannot be written (a read-only mount):
// how to tell, and how to open a connection that creates and changes no file there. The store's
// read-only mode and its recovery are SqliteStore's (read_only.cc). Stateless; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "store/sqlite/sqlite_db.h"

namespace callgate {

// Why the store at `path` cannot be written: the first of its directory and its existing files
// (the database, its -wal and -shm, the -changes file) that access(W_OK) refuses, as
// "<file> cannot be written (<reason>)"; empty if every one can be written.
std::string NotWritable(const std::string& path);

// Opens a read-only connection to the existing database at `path`, which must be of the current
// storage layout, creating and changing no file. Error: a readable reason ("no store at …").
Result<std::unique_ptr<SqliteDb>, std::string> OpenReadOnlyConnection(const std::string& path);

// Whether `path` names an existing file.
bool FileExists(const std::string& path);

}  // namespace callgate
