// Instances of registered classes, held in a library's worker.
//
//   ASSIGN_OR_RETURN(auto p, lib->NewInstance("Point", StructOf({{"x", ToValue(1.0)}})));
//   ASSIGN_OR_RETURN(double x, p->Get<double>("x"));
//   RETURN_IF_ERROR(p->Set("y", ToValue(2.0)));
//
// An Instance owns its handle and frees it when destroyed (best effort;
// call Free() to see errors); Release() gives the handle up instead (for
// borrowed pointers the daemon only forgets the handle). It borrows its
// Library, which must outlive it. Not thread-safe.
#ifndef FFIBROKER_CLIENT_INSTANCE_H_
#define FFIBROKER_CLIENT_INSTANCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ffibroker/client.h"
#include "ffibroker/value.h"

namespace ffibroker {

class Instance {
 public:
  Instance(Library* library, uint64_t handle) : library_(library), handle_(handle) {}
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Reads the named fields (all if empty) as a struct value, validated by
  // the daemon (DATA_LOSS naming a field the library left invalid).
  absl::StatusOr<v1::Value> Read(const std::vector<std::string>& fields = {});
  // Reads one field converted with FromValue<T>.
  template <typename T>
  absl::StatusOr<T> Get(const std::string& field) {
    absl::StatusOr<v1::Value> all = Read({field});
    if (!all.ok()) return all.status();
    const v1::Value* v = FieldOf(*all, field);
    if (v == nullptr) return absl::InternalError("the daemon left out the field");
    return FromValue<T>(*v);
  }
  // Writes mutable fields, given as a struct value (all or nothing).
  absl::Status Write(const v1::Value& fields);
  absl::Status Set(const std::string& field, const v1::Value& value) {
    return Write(StructOf({{field, value}}));
  }
  // Frees the instance now; returns whether a destructor ran.
  absl::StatusOr<bool> Free();
  // Gives up ownership of the handle without freeing it.
  uint64_t Release() {
    freed_ = true;
    return handle_;
  }

  uint64_t handle() const { return handle_; }

 private:
  Library* library_;
  uint64_t handle_;
  bool freed_ = false;
};

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_INSTANCE_H_
