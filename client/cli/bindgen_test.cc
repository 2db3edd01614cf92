#include "client/cli/bindgen.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker::cli {
namespace {

using ::testing::HasSubstr;

v1::LibraryManifest Manifest(std::vector<std::string> classes, std::vector<std::string> functions) {
  v1::LibraryManifest m;
  m.set_library("lib");
  m.set_module("lib_bindings");
  for (auto& c : classes) m.add_classes(c);
  for (auto& f : functions) m.add_functions(f);
  return m;
}

TEST(BindgenTest, MangledNamesBecomeMembers) {
  auto b = BindManifest(Manifest(
      {"opaque Account"},
      {"ffireturn Account* Account__new(cstr id)", "ffireturn i64 Account__balance_mut(Account* self)",
       "ffireturn void Account__set_balance(Account* self, i64 v)",
       "ffireturn void Account__set_frozen(Account* self, bool f)",
       "ffireturn u32 Account__Versioned__version(Account* self)",
       "ffireturn i64 Account__count()", "ffireturn void Account__drop(Account* self)",
       "f64 rate(f64 x)"}));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->classes.size(), 1u);
  const BoundClass& c = b->classes[0];
  ASSERT_NE(c.constructor, nullptr);
  EXPECT_EQ(c.constructor->name, "Account__new");
  ASSERT_EQ(c.properties.size(), 1u);  // balance (from _mut) with its setter
  EXPECT_EQ(c.properties[0].name, "balance");
  EXPECT_EQ(c.properties[0].get->name, "Account__balance_mut");
  EXPECT_EQ(c.properties[0].set->name, "Account__set_balance");
  ASSERT_EQ(c.methods.size(), 1u);  // a setter without a getter stays a method
  EXPECT_EQ(c.methods[0]->name, "Account__set_frozen");
  ASSERT_EQ(c.statics.size(), 1u);
  EXPECT_EQ(c.statics[0]->name, "Account__count");
  ASSERT_EQ(c.traits.count("Versioned"), 1u);
  ASSERT_EQ(b->module_functions.size(), 1u);
  EXPECT_EQ(b->module_functions[0]->name, "rate");
  EXPECT_EQ(b->destructors.count("Account__drop"), 1u);

  std::string py = PythonModule(*b, "m.textproto");
  EXPECT_THAT(py, HasSubstr("    @property\n    def balance(self):"));
  EXPECT_THAT(py, HasSubstr("    @balance.setter\n    def balance(self, v):"));
  EXPECT_THAT(py, HasSubstr("    @staticmethod\n    def count(library):"));
  EXPECT_THAT(py, HasSubstr("    def set_frozen(self, f):"));
  EXPECT_THAT(py, HasSubstr("class _Account_Versioned:"));
  EXPECT_THAT(py, ::testing::Not(HasSubstr("\"Account__drop\":")));  // never opened
  std::string cpp = CppHeader(*b, "m.textproto");
  EXPECT_THAT(cpp, HasSubstr("static absl::StatusOr<std::unique_ptr<Account>> New(Library& library, const std::string& id);"));
  EXPECT_THAT(cpp, HasSubstr("absl::StatusOr<int64_t> balance();"));
  EXPECT_THAT(cpp, HasSubstr("absl::StatusOr<uint32_t> Versioned_version();"));
  EXPECT_THAT(cpp, HasSubstr("static absl::StatusOr<int64_t> count(Library& library);"));
  EXPECT_THAT(cpp, HasSubstr("absl::StatusOr<double> rate(double x);"));
}

TEST(BindgenTest, StructsByValueAreRefusedPrecisely) {
  absl::Status s = BindManifest(Manifest({"Point { f64 x; f64 y; }"},
                                         {"f64 norm(Point p)"})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("norm: parameter 1 is Point"));
}

TEST(BindgenTest, MistakesNameTheTextAndColumn) {
  absl::Status s = BindManifest(Manifest({}, {"f64 cos(f64 x)", "f64 sin(f65 x)"})).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("functions[1]: expected a type"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("column 9"));
  v1::LibraryManifest bad = Manifest({}, {"f64 cos(f64)"});
  bad.set_module("not-an-identifier");
  EXPECT_THAT(std::string(BindManifest(bad).status().message()),
              HasSubstr("module: 'not-an-identifier' is not a C identifier"));
}

}  // namespace
}  // namespace ffibroker::cli
