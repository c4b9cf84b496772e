// pooled-app dashboard: polls /api/performance/dashboard once a second and draws the figures with
// plain DOM updates and canvas charts (no external libraries). A token, when the API needs one,
// comes from the URL fragment (#token=...) or a prompt, and is kept in sessionStorage only.
(function () {
  "use strict";
  var API = "/api/performance/dashboard";
  var token = null;
  var m = /(?:^#|&)token=([^&]+)/.exec(location.hash || "");
  if (m) { token = decodeURIComponent(m[1]); try { sessionStorage.setItem("pp-token", token); } catch (e) {} }
  if (!token) { try { token = sessionStorage.getItem("pp-token"); } catch (e) {} }

  function $(id) { return document.getElementById(id); }
  function fmt(v, d) { return (v === null || v === undefined || isNaN(v)) ? "–" : Number(v).toFixed(d); }
  function set(id, v, d, suffix) {
    var el = $(id); if (!el) return;
    el.setAttribute("data-value", v === null || v === undefined ? "" : String(v));
    el.textContent = fmt(v, d) + (suffix || "");
  }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function status(text, cls) { var s = $("status"); s.textContent = text; s.className = "status " + (cls || ""); }

  function chart(canvas, series, opts) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    canvas.width = w * dpr; canvas.height = h * dpr;
    var c = canvas.getContext("2d"); c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    var L = 48, R = 8, T = 8, B = 22, pw = w - L - R, ph = h - T - B;
    var n = 0, max = 0;
    series.forEach(function (s) { n = Math.max(n, s.values.length); s.values.forEach(function (v) { if (v > max) max = v; }); });
    max = max > 0 ? max * 1.1 : 1;
    c.strokeStyle = "#26313c"; c.fillStyle = "#8b98a5"; c.font = "11px system-ui"; c.lineWidth = 1;
    for (var i = 0; i <= 4; i++) {
      var y = T + ph - ph * i / 4;
      c.beginPath(); c.moveTo(L, y); c.lineTo(L + pw, y); c.stroke();
      c.fillText(fmt(max * i / 4, max < 10 ? 1 : 0), 4, y + 4);
    }
    c.fillText("-" + n + " s", L, h - 6); c.fillText("now", L + pw - 22, h - 6);
    series.forEach(function (s) {
      if (!s.values.length) return;
      c.strokeStyle = s.color; c.lineWidth = 1.6; c.beginPath();
      s.values.forEach(function (v, k) {
        var x = L + (n <= 1 ? pw : pw * (k + n - s.values.length) / (n - 1));
        var y = T + ph - ph * (v / max);
        if (k === 0) c.moveTo(x, y); else c.lineTo(x, y);
      });
      c.stroke();
    });
  }

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#fff"; }

  function render(d) {
    if (!d.monitoring_enabled) { status("monitoring disabled", "warn"); return; }
    var rt = d.realtime || {}, s10 = rt.last_10s || {}, s60 = rt.last_60s || {}, lat = s10.latency_ms || {};
    $("instance").textContent = rt.instance || "–";
    $("updated").textContent = new Date().toLocaleTimeString();
    set("p50", lat.p50_ms, 1); set("p95", lat.p95_ms, 1); set("p99", lat.p99_ms, 1);
    set("rps", s10.rps, 1);
    set("errors", s60.errors, 0); set("error-rate", s60.error_rate_percent, 2, " %");
    var pool = d.health && d.health.services ? d.health.services.connection_pool : null;
    set("pool-util", pool ? pool.utilization : null, 1);
    set("health-score", d.health ? d.health.composite_score : null, 0);
    var al = d.alerts || { active: [] };
    set("alerts-count", (al.active || []).length, 0);
    $("alerts-firing").textContent = al.firing ? al.firing + " firing" : "";
    var rows = (al.active || []).map(function (a) {
      return "<tr><td>" + esc(a.id) + "</td><td class=\"sev-" + esc(a.severity) + "\">" + esc(a.severity) + "</td><td>" + esc(a.state) +
        "</td><td data-value=\"" + esc(a.value) + "\">" + fmt(a.value, 1) + " " + esc(a.unit) + "</td><td>" + esc(a.threshold) + " " + esc(a.unit) + "</td></tr>";
    });
    $("alerts-body").innerHTML = rows.length ? rows.join("") : "<tr><td colspan=\"5\" class=\"muted\">none</td></tr>";
    var sm = d.summary_1h || {}, sp = sm.latency_percentiles_ms || {};
    set("total-1h", sm.total_requests, 0); set("error-rate-1h", sm.error_rate_percent, 2, " %");
    set("p50-1h", sp.p50, 1); set("p95-1h", sp.p95, 1); set("p99-1h", sp.p99, 1); set("rps-1h", sm.throughput_rps, 2);
    var b = sm.baseline || rt.baseline;
    set("baseline", b ? b.p95_ms : null, 1, b ? " ms" + (rt.regression && rt.regression.detected ? " — regression ×" + rt.regression.ratio : "") : "");
    var st = sm.store || {};
    $("store").textContent = (st.redis_available ? "redis ok" : "redis unavailable") + " · " + (sm.source || "") +
      " · gaps " + (st.gaps || 0) + (st.gap_open_since ? " (open)" : "") + " · backlog " + (st.backlog || 0);
    if (d.health && d.health.services) {
      var sv = d.health.services;
      var detail = {
        database: sv.database.response_time_ms !== null ? fmt(sv.database.response_time_ms, 2) + " ms" : (sv.database.error || ""),
        redis: sv.redis.response_time_ms !== null ? fmt(sv.redis.response_time_ms, 2) + " ms" : (sv.redis.error || ""),
        connection_pool: fmt(sv.connection_pool.utilization, 1) + " % used" + (sv.connection_pool.fallback_mode ? " · fallback" : ""),
        performance: "p95 " + fmt(sv.performance.p95_latency, 1) + " ms · errors " + fmt(sv.performance.error_rate_percent, 2) + " %",
        notifiers: sv.notifiers.configured + " channels · " + sv.notifiers.failures_last_5m + " failures/5 min"
      };
      $("health-body").innerHTML = Object.keys(detail).map(function (k) {
        return "<tr><td>" + k + "</td><td class=\"" + (sv[k].healthy ? "good" : "bad") + "\" data-value=\"" + sv[k].score + "\">" + sv[k].score + "</td><td>" + esc(detail[k]) + "</td></tr>";
      }).join("");
      $("insights").innerHTML = (d.health.insights || []).map(function (i) { return "<li>" + esc(i) + "</li>"; }).join("");
      status(d.health.overall_healthy ? "healthy" : "degraded", d.health.overall_healthy ? "ok" : "warn");
    }
    $("routes-body").innerHTML = (rt.routes || []).map(function (r) {
      var l = r.latency_ms || {};
      return "<tr><td>" + esc(r.route) + "</td><td>" + r.requests + "</td><td>" + r.errors + "</td><td>" + fmt(l.p50_ms, 1) + "</td><td>" + fmt(l.p95_ms, 1) +
        "</td><td>" + fmt(l.p99_ms, 1) + "</td><td>" + fmt(l.max_ms, 1) + "</td></tr>";
    }).join("");
    var pts = rt.series || [];
    chart($("latency-chart"), [
      { values: pts.map(function (p) { return p.p50; }), color: css("--p50") },
      { values: pts.map(function (p) { return p.p95; }), color: css("--p95") },
      { values: pts.map(function (p) { return p.p99; }), color: css("--p99") }
    ]);
    chart($("rps-chart"), [
      { values: pts.map(function (p) { return p.rps; }), color: css("--rps") },
      { values: pts.map(function (p) { return p.errors; }), color: css("--err") }
    ]);
  }

  function poll() {
    var headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    fetch(API, { headers: headers, cache: "no-store" }).then(function (r) {
      if (r.status === 401) {
        var t = window.prompt("Performance API token");
        if (t) { token = t; try { sessionStorage.setItem("pp-token", t); } catch (e) {} }
        throw new Error("unauthorized");
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(render).catch(function (e) { status("error: " + e.message, "fail"); })
      .then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
