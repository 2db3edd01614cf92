// LayerName: a confinement layer as users see it in messages, logs and
// `ffibroker status` (LAYER_USER_NAMESPACE -> "user_namespace"); the same
// names --disable-layers accepts.
#ifndef FFIBROKER_COMMON_LAYER_NAME_H_
#define FFIBROKER_COMMON_LAYER_NAME_H_

#include <string>

#include "absl/strings/ascii.h"
#include "ffibroker/v1/confinement.pb.h"

namespace ffibroker {

inline std::string LayerName(v1::Layer layer) {
  std::string name = v1::Layer_Name(layer);
  if (name.rfind("LAYER_", 0) == 0) name = name.substr(6);
  return absl::AsciiStrToLower(name);
}

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_LAYER_NAME_H_
