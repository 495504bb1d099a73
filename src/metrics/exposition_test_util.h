// For tests: a Prometheus text exposition read back as series -> value.
#pragma once

#include <map>
#include <sstream>
#include <string>

namespace callgate {

// The samples of an exposition: series (name and labels, as written) -> value.
inline std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

}  // namespace callgate
