// ProfileDir: a temporary directory of confinement profile files for the
// profile unit tests, removed when it goes out of scope.
//
//   ProfileDir dir({{"p.textproto", "name: \"p\"\n"}});
//   ProfileSet::LoadDirectory(dir.path());
#ifndef FFIBROKER_DAEMON_PROFILE_DIR_FOR_TESTS_H_
#define FFIBROKER_DAEMON_PROFILE_DIR_FOR_TESTS_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace ffibroker {

class ProfileDir {
 public:
  // Writes `files` (name -> text) into a fresh directory.
  explicit ProfileDir(const std::map<std::string, std::string>& files) {
    std::string templ = ::testing::TempDir() + "profiles.XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
    for (const auto& [name, text] : files) std::ofstream(path_ + "/" + name) << text;
  }
  ~ProfileDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ProfileDir(const ProfileDir&) = delete;
  ProfileDir& operator=(const ProfileDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PROFILE_DIR_FOR_TESTS_H_
