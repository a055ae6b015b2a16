/* OnlyTrade viewer: the read-only lobby and room pages. No build step, no control token,
   and every piece of data reaches the page through textContent, never as markup. All URLs are
   relative to the page's <base>, so the pages work under any path prefix (e.g. /onlytrade/). */
(function () {
  "use strict";

  var DECISION_LIMIT = 5;
  var COMPETITION_MS = 15000;
  var MODE_MS = 5000;
  var POLL_MS = 30000;
  var SSE_RETRY_MS = 60000;
  var REFETCH_JITTER_MS = 2000;

  // ---- pure helpers (also exported for the tests) ---------------------------------------------

  function basePath(pathname) {
    var at = pathname.indexOf("/room/");
    return at >= 0 ? pathname.slice(0, at + 1) : pathname.replace(/[^/]*$/, "");
  }

  function roomIdFromPath(pathname) {
    var match = /\/room\/([^/]+)\/?$/.exec(pathname);
    if (!match) return null;
    var id;
    try {
      id = decodeURIComponent(match[1]);
    } catch (e) {
      return null;
    }
    return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : null;
  }

  function num(value) {
    var n = typeof value === "number" ? value : parseFloat(value);
    return isFinite(n) ? n : null;
  }

  function fmtNumber(value, digits) {
    var n = num(value);
    if (n === null) return "—";
    return n.toLocaleString("zh-CN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function fmtSigned(value, digits, suffix) {
    var n = num(value);
    if (n === null) return "—";
    return (n > 0 ? "+" : "") + fmtNumber(n, digits) + (suffix || "");
  }

  function trend(value) {
    var n = num(value);
    return n === null || n === 0 ? "flat" : n > 0 ? "up" : "down";
  }

  function fmtTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.toLocaleTimeString("zh-CN", { hour12: false });
  }

  function firstAction(record) {
    if (record && Array.isArray(record.decisions) && record.decisions.length) return record.decisions[0] || {};
    if (record && typeof record.decision_json === "string") {
      try {
        return JSON.parse(record.decision_json) || {};
      } catch (e) {
        return {};
      }
    }
    return {};
  }

  function decisionKey(record) {
    return [record.timestamp, record.cycle_number, record.decision_json].join("|");
  }

  function mergeDecision(list, record, limit) {
    if (!record || typeof record !== "object") return list;
    var key = decisionKey(record);
    var rest = list.filter(function (item) { return decisionKey(item) !== key; });
    return [record].concat(rest).slice(0, limit);
  }

  function thinkingSymbol(packet, decisions) {
    var context = packet && packet.room_context;
    if (context && context.thinking_symbol) return String(context.thinking_symbol);
    var latest = decisions && decisions[0];
    return latest ? firstAction(latest).symbol || null : null;
  }

  function killActive(packet) {
    var runtime = (packet && packet.runtime) || {};
    var gate = (packet && packet.status && packet.status.market_gate) || {};
    return Boolean((runtime.kill_switch && runtime.kill_switch.active) || gate.kill_switch_active);
  }

  function staleState(packet) {
    var runtime = (packet && packet.runtime) || {};
    var readiness = (packet && packet.room_context && packet.room_context.data_readiness) || {};
    var freshness = runtime.data_freshness;
    var reasons = Array.isArray(readiness.reasons) ? readiness.reasons.map(String) : [];
    if (readiness.level === "ERROR") return { text: "数据异常", level: "danger", reasons: reasons };
    if (freshness && typeof freshness === "object" && (freshness.ok === false || freshness.stale === true)) {
      return { text: "数据延迟", level: "warn", reasons: reasons.concat(freshness.reason ? [String(freshness.reason)] : []) };
    }
    if (readiness.level === "WARN") return { text: "数据预警", level: "warn", reasons: reasons };
    return null;
  }

  function pausedState(packet) {
    if (!packet) return null;
    var trader = packet.trader || {};
    var state = (packet.runtime && packet.runtime.state) || {};
    var gate = (packet.status && packet.status.market_gate) || {};
    if (trader.is_running === false) return "已停止";
    if (state.running === false || gate.manual_paused === true) return "已暂停";
    if (gate.enabled === true && gate.allow_run === false) return "休市中";
    return null;
  }

  function modeLabel(status) {
    if (!status) return { text: "?", cls: "muted" };
    if (status.data_mode === "live_file") return { text: "LIVE", cls: "live" };
    var text = "REPLAY";
    if (status.trading_day) text += " · " + status.trading_day;
    if (status.day_index && status.day_count) text += " (" + status.day_index + "/" + status.day_count + ")";
    return { text: text, cls: "replay" };
  }

  var api = {
    basePath: basePath,
    roomIdFromPath: roomIdFromPath,
    fmtNumber: fmtNumber,
    fmtSigned: fmtSigned,
    trend: trend,
    firstAction: firstAction,
    mergeDecision: mergeDecision,
    thinkingSymbol: thinkingSymbol,
    killActive: killActive,
    staleState: staleState,
    pausedState: pausedState,
    modeLabel: modeLabel,
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  if (typeof document === "undefined") return;

  // ---- DOM ----------------------------------------------------------------------------------------

  function byId(testid) {
    return document.querySelector('[data-testid="' + testid + '"]');
  }

  function el(tag, testid, text, className) {
    var node = document.createElement(tag);
    if (testid) node.setAttribute("data-testid", testid);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function setText(testid, text, className) {
    var node = byId(testid);
    if (!node) return;
    node.textContent = text;
    if (className !== undefined) node.className = className;
  }

  function show(testid, visible) {
    var node = byId(testid);
    if (node) node.hidden = !visible;
  }

  function showError(message) {
    var node = byId("error-banner");
    if (!node) return;
    node.textContent = message ? "数据暂不可用：" + message : "";
    node.hidden = !message;
  }

  function fetchJson(url) {
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok || body.success === false) throw new Error(body.error || "http_" + response.status);
        return body.success === true ? body.data : body;
      });
    });
  }

  function stamp() {
    setText("last-updated", new Date().toLocaleTimeString("zh-CN", { hour12: false }));
  }

  // ---- lobby --------------------------------------------------------------------------------------

  function renderCompetition(data) {
    var rows = byId("competition-rows");
    var traders = (data && Array.isArray(data.traders) ? data.traders : []).slice();
    traders.sort(function (a, b) { return (num(b.total_pnl_pct) || 0) - (num(a.total_pnl_pct) || 0); });
    var body = traders.map(function (t) {
      var tr = el("tr", "trader-row");
      tr.setAttribute("data-trader-id", String(t.trader_id));
      var name = el("td");
      var link = el("a", "trader-link");
      link.href = "room/" + encodeURIComponent(String(t.trader_id));
      link.appendChild(el("span", "trader-name", t.trader_name || t.trader_id));
      name.appendChild(link);
      tr.appendChild(name);
      tr.appendChild(el("td", "equity", fmtNumber(t.total_equity, 2), "num"));
      tr.appendChild(el("td", "pnl", fmtSigned(t.total_pnl, 2), "num " + trend(t.total_pnl)));
      tr.appendChild(el("td", "pnl-pct", fmtSigned(t.total_pnl_pct, 2, "%"), "num " + trend(t.total_pnl_pct)));
      tr.appendChild(el("td", "position-count", t.position_count == null ? "—" : t.position_count, "num"));
      tr.appendChild(el("td", "running-state", t.is_running ? "运行中" : "已停止", t.is_running ? "on" : "off"));
      return tr;
    });
    if (!body.length) {
      var empty = el("tr", null, null, "empty");
      var cell = el("td", null, "暂无交易员");
      cell.colSpan = 6;
      empty.appendChild(cell);
      body = [empty];
    }
    rows.replaceChildren.apply(rows, body);
    var replay = data && data.replay;
    if (replay && replay.trading_day) {
      setText("replay-day", "交易日 " + replay.trading_day +
        (replay.day_index && replay.day_count ? " (" + replay.day_index + "/" + replay.day_count + ")" : ""));
      show("replay-day", true);
    }
    showError(null);
    stamp();
  }

  function startLobby() {
    function refresh() {
      fetchJson("api/competition")
        .then(renderCompetition, function (err) { showError(err.message); })
        .then(function () { setTimeout(refresh, COMPETITION_MS); });
    }
    refresh();
  }

  // ---- room ---------------------------------------------------------------------------------------

  function startRoom() {
    var roomId = roomIdFromPath(location.pathname);
    if (!roomId) {
      showError("invalid_room_id");
      return;
    }
    var room = encodeURIComponent(roomId);
    var packetUrl = "api/rooms/" + room + "/stream-packet?decision_limit=" + DECISION_LIMIT;
    var eventsUrl = "api/rooms/" + room + "/events?decision_limit=" + DECISION_LIMIT;
    var state = { packet: null, decisions: [], packetAt: 0, source: null, pollTimer: null, refetchTimer: null };

    function renderAccount(packet) {
      var account = packet.account || {};
      setText("equity", fmtNumber(account.total_equity, 2));
      setText("pnl", fmtSigned(account.total_pnl, 2), "value " + trend(account.total_pnl));
      setText("pnl-pct", fmtSigned(account.total_pnl_pct, 2, "%"), "value " + trend(account.total_pnl_pct));
      setText("cash", fmtNumber(account.available_balance, 2));
    }

    function renderPositions(packet) {
      var positions = Array.isArray(packet.positions) ? packet.positions : [];
      setText("position-count", positions.length ? "(" + positions.length + ")" : "");
      var rows = positions.map(function (p) {
        var tr = el("tr", "position-row");
        tr.appendChild(el("td", "position-symbol", p.symbol));
        tr.appendChild(el("td", "position-quantity", fmtNumber(p.quantity, 0), "num"));
        tr.appendChild(el("td", null, fmtNumber(p.entry_price, 2), "num"));
        tr.appendChild(el("td", null, fmtNumber(p.mark_price, 2), "num"));
        tr.appendChild(el("td", "position-pnl", fmtSigned(p.unrealized_pnl, 2), "num " + trend(p.unrealized_pnl)));
        tr.appendChild(el("td", null, fmtSigned(p.unrealized_pnl_pct, 2, "%"), "num " + trend(p.unrealized_pnl_pct)));
        return tr;
      });
      if (!rows.length) {
        var empty = el("tr", null, null, "empty");
        var cell = el("td", null, "空仓");
        cell.colSpan = 6;
        empty.appendChild(cell);
        rows = [empty];
      }
      var body = byId("positions-rows");
      body.replaceChildren.apply(body, rows);
    }

    function renderDecision(record) {
      var action = firstAction(record);
      var verb = String(action.action || "hold").toLowerCase();
      var li = el("li", "decision-item", null, "decision");
      var head = el("div", null, null, "decision-head");
      head.appendChild(el("span", "decision-time", fmtTime(record.timestamp || action.timestamp), "muted"));
      if (record.cycle_number != null) head.appendChild(el("span", "decision-cycle", "#" + record.cycle_number, "muted"));
      head.appendChild(el("span", "decision-action", verb.toUpperCase(), "action " + verb.replace(/[^a-z_]/g, "")));
      head.appendChild(el("span", "decision-symbol", action.symbol || "—", "symbol"));
      head.appendChild(el("span", "decision-quantity", "数量 " + fmtNumber(action.quantity, 0)));
      head.appendChild(el("span", "decision-price", "价格 " + fmtNumber(action.price, 2)));
      var confidence = num(action.confidence);
      head.appendChild(el("span", "decision-confidence", "信心 " + (confidence === null ? "—" : Math.round(confidence * 100) + "%")));
      li.appendChild(head);
      if (action.reasoning) li.appendChild(el("p", "decision-reasoning", action.reasoning, "reasoning"));
      var steps = Array.isArray(record.reasoning_steps_cn) ? record.reasoning_steps_cn : [];
      if (steps.length) {
        var list = el("ul", "decision-steps", null, "steps");
        steps.forEach(function (step) { list.appendChild(el("li", "decision-step", step)); });
        li.appendChild(list);
      }
      return li;
    }

    function renderDecisions() {
      var list = byId("decision-list");
      var items = state.decisions.slice(0, DECISION_LIMIT).map(renderDecision);
      if (!items.length) items = [el("li", null, "暂无决策", "decision empty")];
      list.replaceChildren.apply(list, items);
      setText("thinking-symbol", thinkingSymbol(state.packet, state.decisions) || "—");
    }

    function renderPacket(packet) {
      var trader = packet.trader || {};
      var name = trader.trader_name || (packet.status && packet.status.trader_name) || roomId;
      setText("trader-name", name);
      document.title = name + " · OnlyTrade";
      renderAccount(packet);
      renderPositions(packet);
      var stale = staleState(packet);
      var staleNode = byId("stale-badge");
      staleNode.hidden = !stale;
      if (stale) {
        staleNode.textContent = stale.text;
        staleNode.className = "badge " + stale.level;
        staleNode.title = stale.reasons.join(", ");
      }
      show("kill-banner", killActive(packet));
      var paused = pausedState(packet);
      setText("paused-indicator", paused || "");
      show("paused-indicator", Boolean(paused));
      var overview = packet.market_overview || {};
      var context = packet.room_context || {};
      setText("market-brief", overview.brief || context.market_overview_brief || "—");
      renderDecisions();
      stamp();
    }

    function applyPacket(packet) {
      if (!packet || typeof packet !== "object") return;
      state.packet = packet;
      state.packetAt = Date.now();
      state.decisions = Array.isArray(packet.decisions_latest) ? packet.decisions_latest.slice() : [];
      showError(null);
      renderPacket(packet);
    }

    function fetchPacket() {
      return fetchJson(packetUrl).then(applyPacket, function (err) { showError(err.message); });
    }

    function onDecision(event) {
      state.decisions = mergeDecision(state.decisions, event && event.decision, DECISION_LIMIT);
      renderDecisions();
      // Every viewer refetches after a decision: spread them out, and skip it when a packet
      // arrived meanwhile (the server also shares one build between them).
      if (state.refetchTimer) return;
      var asked = Date.now();
      state.refetchTimer = setTimeout(function () {
        state.refetchTimer = null;
        if (state.packetAt > asked) return;
        fetchPacket();
      }, Math.floor(Math.random() * REFETCH_JITTER_MS));
    }

    function setConnection(mode) {
      var labels = { live: ["实时", "badge live"], polling: ["轮询", "badge warn"], connecting: ["连接中", "badge muted"] };
      var label = labels[mode] || labels.connecting;
      setText("connection-badge", label[0], label[1]);
    }

    function startPolling() {
      if (state.pollTimer) return;
      setConnection("polling");
      if (!state.packet || Date.now() - state.packetAt > POLL_MS) fetchPacket();
      state.pollTimer = setInterval(fetchPacket, POLL_MS);
    }

    function stopPolling() {
      if (state.pollTimer) clearInterval(state.pollTimer);
      state.pollTimer = null;
    }

    function parse(data) {
      try {
        return JSON.parse(data);
      } catch (e) {
        return null;
      }
    }

    function connect() {
      if (typeof EventSource === "undefined") {
        startPolling();
        return;
      }
      setConnection("connecting");
      var source = new EventSource(eventsUrl);
      state.source = source;
      source.addEventListener("open", function () {
        setConnection("live");
        stopPolling();
      });
      source.addEventListener("stream_packet", function (e) { applyPacket(parse(e.data)); });
      source.addEventListener("decision", function (e) { onDecision(parse(e.data)); });
      source.addEventListener("error", function (e) {
        if (typeof e.data === "string") {
          // An `event: error` the server sent (a failed packet build): the stream itself is fine.
          var body = parse(e.data);
          showError((body && body.error) || "stream_error");
          return;
        }
        // The browser reconnects on its own (with Last-Event-ID) unless the stream is CLOSED
        // (e.g. 429 or 404); poll meanwhile, and try the stream again later.
        startPolling();
        if (source.readyState === EventSource.CLOSED && state.source === source) {
          state.source = null;
          setTimeout(connect, SSE_RETRY_MS);
        }
      });
    }

    function pollMode() {
      fetchJson("api/replay/runtime/status")
        .then(function (status) {
          var label = modeLabel(status);
          setText("mode-badge", label.text, "badge " + label.cls);
        }, function () {
          setText("mode-badge", "?", "badge muted");
        })
        .then(function () { setTimeout(pollMode, MODE_MS); });
    }

    renderDecisions();
    connect();
    pollMode();
  }

  function boot() {
    var page = document.body.getAttribute("data-page");
    if (page === "lobby") startLobby();
    else if (page === "room") startRoom();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
