// A one-line progress bar on stderr for long operations; drawn only when stderr is a
// terminal (scripts and --json get no control characters).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace novacron::cli {

class ProgressBar {
 public:
  explicit ProgressBar(bool wanted) : enabled_(wanted && ::isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // fraction in [0, 1]; label after the percentage (truncated to keep one line).
  void update(double fraction, const std::string& label) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    fraction = std::clamp(fraction, 0.0, 1.0);
    int filled = static_cast<int>(std::lround(fraction * kWidth));
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    std::string text = label.size() > 60 ? label.substr(0, 57) + "..." : label;
    std::fprintf(stderr, "\r[%s] %3d%% %-60s", bar.c_str(), static_cast<int>(std::lround(fraction * 100)),
                 text.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace novacron::cli
