// NamesToResolve is the one list the daemon authorizes and the worker
// resolves (issue 9, finding 2): it must name every function, static and
// needed destructor, and nothing else.
#include "common/resolved_names.h"

#include "common/signature.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

const std::set<std::string> kClasses = {"Point", "Counter", "Unused"};

void Register(ClassTable& table, const std::string& text) {
  auto def = ParseClass(text, kClasses);
  ASSERT_TRUE(def.ok()) << def.status();
  ASSERT_TRUE(table.Register(*def).ok());
}

void Declare(worker::v1::Open& open, const std::string& text) {
  auto decl = ParseDeclaration(text, kClasses);
  ASSERT_TRUE(decl.ok()) << decl.status();
  worker::v1::Symbol* symbol = open.add_symbols();
  symbol->set_name(decl->name);
  *symbol->mutable_signature() = decl->signature;
}

std::vector<std::string> Names(const std::vector<NameToResolve>& names) {
  std::vector<std::string> out;
  for (const NameToResolve& n : names) out.push_back(DescribeName(n));
  return out;
}

TEST(NamesToResolveTest, FunctionsStaticsAndDestructorsOfOwnedResults) {
  ClassTable classes;
  Register(classes, "Point { f64 x; f64 y; } ~point_free");
  Register(classes, "opaque Counter");
  Register(classes, "Unused { i32 x; } ~never_resolved");
  worker::v1::Open open;
  Declare(open, "Point* point_new(f64 x, f64 y)");
  Declare(open, "borrowed Point* origin()");
  Declare(open, "ffireturn Counter* Counter__new(i64 start)");
  Declare(open, "void point_free(Point* p)");  // also a destructor: listed once
  auto stat = ParseStatic("mut i32 counter_static", kClasses);
  ASSERT_TRUE(stat.ok()) << stat.status();
  worker::v1::Symbol* s = open.add_statics();
  s->set_name(stat->name());
  *s->mutable_signature()->mutable_result() = stat->type();
  auto names = NamesToResolve(open, classes);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(Names(*names),
            (std::vector<std::string>{
                "function 'point_new'", "function 'origin'", "function 'Counter__new'",
                "function 'point_free'", "static 'counter_static'",
                "destructor 'Counter__drop' (of class Counter, needed by 'Counter__new')"}));
}

}  // namespace
}  // namespace ffibroker
