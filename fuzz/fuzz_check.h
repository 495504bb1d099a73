// What the fuzz targets share: an invariant check that stops the run with a message libFuzzer
// keeps beside the input that broke it.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace callgate::fuzz {

inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace callgate::fuzz
