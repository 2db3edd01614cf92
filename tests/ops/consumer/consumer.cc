// Calls cos(0.5) in libm through ffibrokerd at argv[1] and prints it.
#include <cstdio>

#include "ffibroker/client.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto client = ffibroker::Client::Connect(argv[1], absl::Seconds(30));
  if (!client.ok()) return std::fprintf(stderr, "%s\n", client.status().ToString().c_str()), 1;
  auto session = (*client)->CreateSession();
  if (!session.ok()) return std::fprintf(stderr, "%s\n", session.status().ToString().c_str()), 1;
  auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64 x)"});
  if (!libm.ok()) return std::fprintf(stderr, "%s\n", libm.status().ToString().c_str()), 1;
  auto c = (*libm)->Call<double>("cos", 0.5);
  if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), 1;
  std::printf("%.16g\n", *c);
  return 0;
}
