#include "daemon/answer_once.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace ffibroker {

absl::Status LostAnswer(const char* what) {
  LOG_ERROR("the answer to a request (%s) was dropped before it was sent; answering INTERNAL",
            what);
  return absl::InternalError(
      absl::StrCat("the daemon lost the answer to ", what, " (an internal error: see its log)"));
}

}  // namespace ffibroker
