// Plain SVG charts for the compare report: a stage x time timeline built from a trace's compute
// spans, and a throughput-against-micro-batch-count line plot. The SVG is written by hand (svg,
// rect, line, polyline, circle, text and title elements only) and is well-formed XML: every text
// is escaped with XmlEscape.
//
// Stateless and thread-safe.
#ifndef YOLOPIPE_RUNTIME_REPORT_SVG_H_
#define YOLOPIPE_RUNTIME_REPORT_SVG_H_

#include <string>
#include <vector>

#include "runtime/trace/trace.h"

namespace yolopipe {

// `text` with &, <, >, " and ' replaced by entities.
std::string XmlEscape(const std::string& text);

// The micro-batch number of an event named "mb <i>", or -1 when the name has another form.
int MicrobatchOfEvent(const TraceEvent& event);

// Timeline: one row per track (pid, ascending; labelled "stage <pid>" or the given names, index =
// pid when present), time on the x axis (microseconds of the trace, shown in ms). Every event of
// category "compute" becomes exactly one <rect> (class "span"), filled by its micro-batch (a
// fixed palette cycled by MicrobatchOfEvent; grey when the name has no micro-batch), with a
// <title> "mb i: start .. end ms". Other events are ignored. An empty trace gives a valid SVG with
// the text "no compute spans".
std::string TimelineSvg(const std::vector<TraceEvent>& events, const std::string& title,
                        const std::vector<std::string>& track_names = {});

struct PlotPoint {
  double x = 0;  // micro-batches per replica
  double y = 0;  // images per second
};

// Line plot of throughput (y, img/s) against micro-batch count (x): `measured` as a solid
// polyline with a circle (class "measured") per point, `predicted` (may be empty) as a dashed
// polyline with a circle (class "predicted") per point, and a legend. Axes start at 0.
std::string ThroughputPlotSvg(const std::vector<PlotPoint>& measured,
                              const std::vector<PlotPoint>& predicted, const std::string& title);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_REPORT_SVG_H_
