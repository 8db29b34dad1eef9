#include "runtime/report/svg.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"

namespace yolopipe {
namespace {

constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

std::string Header(int width, int height) {
  return absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
      width, height, width, height, width, height);
}

std::string Text(double x, double y, const std::string& text, const char* anchor = "start") {
  return absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n", x, y,
                         anchor, XmlEscape(text));
}

// A "nice" upper bound for an axis: 1, 2 or 5 x 10^k >= v.
double NiceMax(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1.0;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

}  // namespace

std::string XmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

int MicrobatchOfEvent(const TraceEvent& event) {
  if (!absl::StartsWith(event.name, "mb ")) return -1;
  int i = 0;
  if (!absl::SimpleAtoi(event.name.substr(3), &i) || i < 0) return -1;
  return i;
}

std::string TimelineSvg(const std::vector<TraceEvent>& events, const std::string& title,
                        const std::vector<std::string>& track_names) {
  std::vector<const TraceEvent*> spans;
  std::map<int, int> rows;  // pid -> row
  double end_us = 0;
  for (const TraceEvent& e : events) {
    if (e.category != "compute") continue;
    spans.push_back(&e);
    rows[e.pid] = 0;
    end_us = std::max(end_us, e.ts_us + e.dur_us);
  }
  int row = 0;
  for (auto& [pid, r] : rows) r = row++;

  constexpr int kLeft = 110, kTop = 40, kRowH = 28, kPlotW = 700, kBottom = 40;
  const int height = kTop + std::max(1, row) * kRowH + kBottom;
  const int width = kLeft + kPlotW + 20;
  std::string svg = Header(width, height);
  absl::StrAppend(&svg, Text(width / 2.0, 20, title, "middle"));
  if (spans.empty()) {
    absl::StrAppend(&svg, Text(width / 2.0, kTop + 20, "no compute spans", "middle"), "</svg>\n");
    return svg;
  }
  const double end_ms = NiceMax(end_us / 1000.0);
  const double scale = kPlotW / (end_ms * 1000.0);  // px per us
  for (const auto& [pid, r] : rows) {
    const std::string name =
        pid >= 0 && pid < static_cast<int>(track_names.size()) ? track_names[pid]
                                                               : absl::StrCat("stage ", pid);
    absl::StrAppend(&svg, Text(kLeft - 8, kTop + r * kRowH + kRowH * 0.65, name, "end"));
  }
  // Time axis with 5 ticks.
  const double axis_y = kTop + row * kRowH + 4;
  absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                                        "stroke=\"black\"/>\n",
                                        kLeft, axis_y, kLeft + kPlotW, axis_y));
  for (int t = 0; t <= 5; ++t) {
    const double x = kLeft + kPlotW * t / 5.0;
    absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                          "stroke=\"black\"/>\n",
                                          x, axis_y, x, axis_y + 4));
    absl::StrAppend(&svg, Text(x, axis_y + 16, absl::StrFormat("%g", end_ms * t / 5.0), "middle"));
  }
  absl::StrAppend(&svg, Text(kLeft + kPlotW / 2.0, axis_y + 32, "time (ms)", "middle"));
  for (const TraceEvent* e : spans) {
    const int mb = MicrobatchOfEvent(*e);
    const char* fill = mb < 0 ? "#999999" : kPalette[mb % kPaletteSize];
    const double x = kLeft + e->ts_us * scale;
    const double w = std::max(0.5, e->dur_us * scale);
    const double y = kTop + rows[e->pid] * kRowH + 3;
    absl::StrAppend(
        &svg,
        absl::StrFormat("<rect class=\"span\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
                        "fill=\"%s\" stroke=\"black\" stroke-width=\"0.3\">"
                        "<title>%s</title></rect>\n",
                        x, y, w, kRowH - 6, fill,
                        XmlEscape(absl::StrFormat("%s: %.3f .. %.3f ms", e->name, e->ts_us / 1e3,
                                                  (e->ts_us + e->dur_us) / 1e3))));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

std::string ThroughputPlotSvg(const std::vector<PlotPoint>& measured,
                              const std::vector<PlotPoint>& predicted, const std::string& title) {
  constexpr int kLeft = 70, kTop = 40, kW = 560, kH = 300;
  const int width = kLeft + kW + 160, height = kTop + kH + 50;
  double max_x = 0, max_y = 0;
  for (const auto* pts : {&measured, &predicted}) {
    for (const PlotPoint& p : *pts) {
      if (std::isfinite(p.x)) max_x = std::max(max_x, p.x);
      if (std::isfinite(p.y)) max_y = std::max(max_y, p.y);
    }
  }
  max_x = NiceMax(max_x);
  max_y = NiceMax(max_y * 1.05);
  auto px = [&](double x) { return kLeft + kW * (std::isfinite(x) ? x : 0) / max_x; };
  auto py = [&](double y) { return kTop + kH - kH * (std::isfinite(y) ? y : 0) / max_y; };

  std::string svg = Header(width, height);
  absl::StrAppend(&svg, Text(width / 2.0, 20, title, "middle"));
  absl::StrAppend(&svg, absl::StrFormat(
                            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
                            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n",
                            kLeft, kTop + kH, kLeft + kW, kTop + kH, kLeft, kTop, kLeft, kTop + kH));
  for (int t = 0; t <= 5; ++t) {
    const double xv = max_x * t / 5.0, yv = max_y * t / 5.0;
    absl::StrAppend(&svg, Text(px(xv), kTop + kH + 16, absl::StrFormat("%g", xv), "middle"));
    absl::StrAppend(&svg, Text(kLeft - 6, py(yv) + 4, absl::StrFormat("%g", yv), "end"));
  }
  absl::StrAppend(&svg, Text(kLeft + kW / 2.0, kTop + kH + 36, "micro-batches per batch", "middle"));
  absl::StrAppend(&svg, Text(14, kTop - 10, "img/s"));
  auto series = [&](const std::vector<PlotPoint>& pts, const char* cls, const char* color,
                    const char* dash) {
    if (pts.empty()) return;
    std::string points;
    for (const PlotPoint& p : pts) absl::StrAppend(&points, absl::StrFormat("%.1f,%.1f ", px(p.x), py(p.y)));
    absl::StrAppend(&svg, absl::StrFormat("<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                                          "stroke-width=\"2\"%s/>\n",
                                          points, color, dash));
    for (const PlotPoint& p : pts) {
      absl::StrAppend(&svg, absl::StrFormat("<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
                                            "fill=\"%s\"><title>%g micro-batches: %.2f img/s"
                                            "</title></circle>\n",
                                            cls, px(p.x), py(p.y), color, p.x, p.y));
    }
  };
  series(measured, "measured", "#4e79a7", "");
  series(predicted, "predicted", "#e15759", " stroke-dasharray=\"6,4\"");
  const int lx = kLeft + kW + 20;
  absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                                        "stroke=\"#4e79a7\" stroke-width=\"2\"/>\n",
                                        lx, kTop + 10, lx + 24, kTop + 10));
  absl::StrAppend(&svg, Text(lx + 30, kTop + 14, "measured"));
  if (!predicted.empty()) {
    absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                                          "stroke=\"#e15759\" stroke-width=\"2\" "
                                          "stroke-dasharray=\"6,4\"/>\n",
                                          lx, kTop + 30, lx + 24, kTop + 30));
    absl::StrAppend(&svg, Text(lx + 30, kTop + 34, "simulated"));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

}  // namespace yolopipe
