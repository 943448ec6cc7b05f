// siyu console: the few behaviours HTML cannot do alone. No build step.
(function () {
  "use strict";
  function init(root) {
    root.querySelectorAll("[data-check-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        document.querySelectorAll('input[type=checkbox][name="' + box.dataset.checkAll + '"]').forEach(function (b) {
          b.checked = box.checked;
        });
      });
    });
    if (window.echarts) {
      root.querySelectorAll("[data-chart=bar]").forEach(function (el) {
        var data = JSON.parse(el.dataset.series || '{"names":[],"values":[]}');
        var chart = window.echarts.init(el);
        chart.setOption({
          grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
          xAxis: { type: "value", minInterval: 1 },
          yAxis: { type: "category", data: data.names },
          tooltip: {},
          series: [{ type: "bar", data: data.values, itemStyle: { color: "#1677ff" } }],
        });
        window.addEventListener("resize", function () { chart.resize(); });
      });
      // {"x": [...], "series": [{"name", "values"}], "type": "bar"|"line", "stack": bool}
      root.querySelectorAll("[data-chart=series]").forEach(function (el) {
        var data = JSON.parse(el.dataset.series || '{"x":[],"series":[]}');
        var chart = window.echarts.init(el);
        chart.setOption({
          grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
          animation: false,
          legend: { type: "scroll", top: 0 },
          tooltip: { trigger: "axis" },
          xAxis: { type: "category", data: data.x },
          yAxis: { type: "value", minInterval: 1 },
          series: data.series.map(function (s) {
            return { name: s.name, type: data.type, stack: data.stack ? "total" : undefined, data: s.values,
                     smooth: data.type === "line" };
          }),
        });
        window.addEventListener("resize", function () { chart.resize(); });
      });
    }
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (e) { init(e.target); });
})();
