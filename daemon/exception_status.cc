#include "daemon/exception_status.h"

#include <exception>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace ffibroker {

absl::Status ExceptionStatus(absl::string_view doing) {
  try {
    throw;  // the exception being handled
  } catch (const std::bad_alloc&) {
    LOG_ERROR("out of memory %s", std::string(doing));
    return absl::ResourceExhaustedError(absl::StrCat("the daemon ran out of memory ", doing));
  } catch (const std::exception& e) {
    LOG_ERROR("exception %s: %s", std::string(doing), e.what());
    return absl::InternalError(absl::StrCat("internal error ", doing, ": ", e.what()));
  } catch (...) {
    LOG_ERROR("unknown exception %s", std::string(doing));
    return absl::InternalError(absl::StrCat("internal error ", doing));
  }
}

}  // namespace ffibroker
