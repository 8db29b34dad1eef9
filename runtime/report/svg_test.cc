#include "runtime/report/svg.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/trace/trace.h"

namespace yolopipe {
namespace {

// True when every element is closed in order (a minimal XML well-formedness check: tags balance,
// no stray '<' or '&' outside entities).
bool Balanced(const std::string& xml, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0;
  int roots = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      const size_t semi = xml.find(';', i);
      const std::string ent = semi == std::string::npos ? "" : xml.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;") {
        *why = "bad entity at " + std::to_string(i);
        return false;
      }
      i = semi + 1;
      continue;
    }
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) {
      *why = "unterminated tag";
      return false;
    }
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.find('<') != std::string::npos) {
      *why = "'<' inside tag " + tag;
      return false;
    }
    if (tag[0] == '?') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) {
        *why = "unexpected </" + name + ">";
        return false;
      }
      stack.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" /"));
    if (stack.empty()) ++roots;
    if (tag.back() != '/') stack.push_back(name);
  }
  if (!stack.empty()) {
    *why = "unclosed <" + stack.back() + ">";
    return false;
  }
  if (roots != 1) {
    *why = "root elements: " + std::to_string(roots);
    return false;
  }
  return true;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(BalancedTest, DetectsBrokenXml) {
  std::string why;
  EXPECT_TRUE(Balanced("<?xml?><svg><rect/><text>a &amp; b</text></svg>", &why)) << why;
  EXPECT_FALSE(Balanced("<svg><text>a</svg>", &why));
  EXPECT_FALSE(Balanced("<svg><text>a & b</text></svg>", &why));
  EXPECT_FALSE(Balanced("<svg></svg><svg></svg>", &why));
}

TEST(XmlEscapeTest, EscapesSpecials) {
  EXPECT_EQ(XmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(XmlEscape(std::string("x\x01y")), "x y");
}

TEST(MicrobatchOfEventTest, ParsesName) {
  TraceEvent e;
  e.name = "mb 12";
  EXPECT_EQ(MicrobatchOfEvent(e), 12);
  e.name = "mb x";
  EXPECT_EQ(MicrobatchOfEvent(e), -1);
  e.name = "stage";
  EXPECT_EQ(MicrobatchOfEvent(e), -1);
}

TEST(TimelineSvgTest, OneRectPerComputeSpan) {
  TraceWriter trace;
  // 2 stages x 3 micro-batches of compute, plus send/recv spans that must not be drawn.
  for (int s = 0; s < 2; ++s) {
    for (int mb = 0; mb < 3; ++mb) {
      const double ts = 1000.0 * (mb + s);
      trace.Add("mb " + std::to_string(mb), "compute", s, TraceLane::kCompute, ts, 900.0);
      trace.Add("mb " + std::to_string(mb), "send", s, TraceLane::kSend, ts + 900, 50.0);
      trace.Add("mb " + std::to_string(mb), "recv", s, TraceLane::kRecv, ts, 10.0);
    }
  }
  const std::string svg = TimelineSvg(trace.events(), "pipeline <2 stages> & co", {"A", "B"});
  std::string why;
  EXPECT_TRUE(Balanced(svg, &why)) << why << "\n" << svg;
  EXPECT_EQ(Count(svg, "<rect class=\"span\""), 6);
  EXPECT_EQ(Count(svg, "<title>mb 1:"), 2);
  EXPECT_NE(svg.find("pipeline &lt;2 stages&gt; &amp; co"), std::string::npos);
  EXPECT_NE(svg.find(">A</text>"), std::string::npos);
  EXPECT_NE(svg.find(">B</text>"), std::string::npos);
  // Micro-batches 0 and 1 get different colours; the same micro-batch the same one.
  const size_t r0 = svg.find("<title>mb 0:"), r1 = svg.find("<title>mb 1:");
  ASSERT_NE(r0, std::string::npos);
  ASSERT_NE(r1, std::string::npos);
  auto fill_before = [&](size_t pos) {
    const size_t f = svg.rfind("fill=\"", pos);
    return svg.substr(f + 6, 7);
  };
  EXPECT_NE(fill_before(r0), fill_before(r1));
}

TEST(TimelineSvgTest, EmptyTraceIsValid) {
  const std::string svg = TimelineSvg({}, "empty");
  std::string why;
  EXPECT_TRUE(Balanced(svg, &why)) << why;
  EXPECT_EQ(Count(svg, "<rect class=\"span\""), 0);
  EXPECT_NE(svg.find("no compute spans"), std::string::npos);
}

TEST(ThroughputPlotSvgTest, PointsPerSeries) {
  const std::vector<PlotPoint> measured = {{1, 10}, {2, 15}, {4, 18}, {8, 19}};
  const std::vector<PlotPoint> predicted = {{1, 11}, {2, 16}, {4, 19}, {8, 21}};
  const std::string svg = ThroughputPlotSvg(measured, predicted, "t");
  std::string why;
  EXPECT_TRUE(Balanced(svg, &why)) << why;
  EXPECT_EQ(Count(svg, "<circle class=\"measured\""), 4);
  EXPECT_EQ(Count(svg, "<circle class=\"predicted\""), 4);
  EXPECT_EQ(Count(svg, "<polyline"), 2);
  const std::string only = ThroughputPlotSvg(measured, {}, "t");
  EXPECT_TRUE(Balanced(only, &why)) << why;
  EXPECT_EQ(Count(only, "<circle class=\"predicted\""), 0);
  EXPECT_EQ(only.find("simulated"), std::string::npos);
}

}  // namespace
}  // namespace yolopipe
