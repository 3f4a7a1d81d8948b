// The live page of a werify mesh: polls this node's JSON endpoints and redraws. Read-only:
// it only ever sends GET requests. Everything user-supplied (addresses, tags, check names,
// messages) is put in the page as text, never as markup.
"use strict";
(() => {
  const POLL_STATUS_MS = 1000;
  const POLL_OPERATIONS_MS = 3000;
  const POLL_OPERATION_MS = 1000;
  const POLL_EVENTS_MS = 2000;
  const POLL_HEALTH_MS = 5000;
  const REQUEST_TIMEOUT_MS = 8000;
  const MAX_EVENTS = 200;
  const OPERATIONS_LISTED = 30;

  // State and result markers: a symbol and a word, never colour alone.
  const STATE = {
    alive: ["●", "alive"],
    suspect: ["▲", "suspect"],
    dead: ["✕", "dead"],
    left: ["○", "left"],
  };
  const CELL = {
    pass: ["✓", "pass"],
    fail: ["✗", "fail"],
    error: ["!", "error"],
    waiting: ["…", "waiting"],
  };
  const OUTCOME = {
    running: ["…", "running"],
    passed: ["✓", "passed"],
    failed: ["✗", "failed"],
    incomplete: ["!", "incomplete"],
  };

  const $ = (id) => document.getElementById(id);

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function badge(kind, table, key) {
    const [icon, word] = table[key] || ["?", key];
    return el("span", { class: `badge ${kind}-${key}` },
      el("span", { class: "icon", "aria-hidden": "true", text: icon }), " ", word);
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return Number.isInteger(ms) ? "under 1 ms" : `${ms.toFixed(2)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }

  function ago(unixMs) {
    if (!unixMs) return "–";
    return `${duration(Math.max(0, Date.now() - unixMs))} ago`;
  }

  function clock(unixMs) {
    if (!unixMs) return "–";
    return new Date(unixMs).toLocaleTimeString();
  }

  // A found or expected value: text as it is; a map of facts as `name: value` lines.
  function shown(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "string") return v;
    if (typeof v === "object" && !Array.isArray(v)) {
      return Object.entries(v).map(([k, x]) => `${k}: ${typeof x === "string" ? x : JSON.stringify(x)}`).join("\n");
    }
    return JSON.stringify(v);
  }

  // ---- What is shown: the filters and the chosen operation, kept in the URL query. ----
  const view = { state: "", tag: "", op: "" };

  function readUrl() {
    const q = new URLSearchParams(location.search);
    view.state = q.get("state") || "";
    view.tag = q.get("tag") || "";
    view.op = q.get("op") || "";
  }

  function writeUrl() {
    const q = new URLSearchParams();
    if (view.state) q.set("state", view.state);
    if (view.tag) q.set("tag", view.tag);
    if (view.op) q.set("op", view.op);
    const s = q.toString();
    history.replaceState(null, "", (s ? `?${s}` : location.pathname) + location.hash);
  }

  function hostShown(m) {
    if (view.state === "trouble") {
      if (m.state !== "suspect" && m.state !== "dead") return false;
    } else if (view.state && m.state !== view.state) {
      return false;
    }
    if (view.tag) {
      const i = view.tag.indexOf("=");
      const key = i < 0 ? view.tag : view.tag.slice(0, i);
      const tags = m.tags || {};
      if (!(key in tags)) return false;
      if (i >= 0 && tags[key] !== view.tag.slice(i + 1)) return false;
    }
    return true;
  }

  // ---- Fetching. ----
  async function getJson(path) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      const r = await fetch(path, {
        signal: abort.signal,
        cache: "no-store",
        headers: { accept: "application/json" },
      });
      let body = null;
      try {
        body = await r.json();
      } catch (_) {
        body = null;
      }
      if (!r.ok) {
        const why = body && body.error ? body.error : `${r.status} ${r.statusText}`;
        const e = new Error(why);
        e.status = r.status;
        throw e;
      }
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  // Runs `fn` now and then `ms` after each run ends (runs never overlap).
  function every(ms, fn) {
    const tick = async () => {
      try {
        await fn();
      } finally {
        setTimeout(tick, typeof ms === "function" ? ms() : ms);
      }
    };
    tick();
  }

  // ---- The mesh. ----
  let status = null;
  let addrOf = new Map(); // node id -> address

  async function pollStatus() {
    const conn = $("conn");
    try {
      status = await getJson("/v1/status");
      addrOf = new Map(status.members.map((m) => [m.node_id, m.addr]));
      conn.className = "conn ok";
      conn.textContent = `Live · updated ${clock(Date.now())}`;
      renderMesh();
    } catch (e) {
      conn.className = "conn bad";
      conn.textContent = `Cannot reach the node: ${e.message}` +
        (status ? ` (showing what it said before)` : "");
    }
  }

  function who(id) {
    if (!id) return null;
    const addr = addrOf.get(id);
    return addr ? `${addr} (${id.slice(0, 8)})` : id.slice(0, 8);
  }

  function renderMesh() {
    const s = status;
    $("env").textContent = `env ${s.env}`;
    $("node").textContent =
      `as seen by ${s.addr} (${s.node_id.slice(0, 8)}) · profile ${s.profile} · ` +
      `local health ${s.local_health} of ${s.local_health_max}` +
      (s.local_health > 0 ? " (degraded: this node's own probes are slowed)" : " (healthy)") +
      ` · ${s.connections} connections`;
    const c = s.counts;
    $("counts").textContent =
      `${s.members.length}: ${c.alive} alive, ${c.suspect} suspect, ${c.dead} dead, ${c.left} left`;
    renderTagChoices();
    const members = s.members.filter(hostShown);
    $("f-shown").textContent = members.length === s.members.length
      ? `showing all ${members.length}`
      : `showing ${members.length} of ${s.members.length}`;
    $("members").replaceChildren(...members.map(tile));
    renderHealth(members);
  }

  function renderTagChoices() {
    const select = $("f-tag");
    const pairs = new Set();
    for (const m of status.members) {
      for (const [k, v] of Object.entries(m.tags || {})) pairs.add(`${k}=${v}`);
    }
    if (view.tag) pairs.add(view.tag);
    const want = ["", ...[...pairs].sort()];
    const have = [...select.options].map((o) => o.value);
    if (want.join("\n") !== have.join("\n")) {
      select.replaceChildren(...want.map((v) => el("option", { value: v, text: v || "any tag" })));
    }
    select.value = view.tag;
  }

  function tile(m) {
    const facts = el("dl", { class: "facts" },
      el("dt", { text: "RTT" }), el("dd", { text: m.is_self ? "–" : duration(m.rtt_ms) }),
      el("dt", { text: "Last heard" }),
      el("dd", { text: m.is_self ? "itself" : (m.last_heard_ms_ago === null ? "never" : `${duration(m.last_heard_ms_ago)} ago`) }),
      el("dt", { text: `${STATE[m.state] ? STATE[m.state][1] : m.state} for` }),
      el("dd", { text: duration(m.in_state_for_ms) }),
      el("dt", { text: "Incarnation" }), el("dd", { text: m.incarnation }));
    const tags = Object.entries(m.tags || {});
    const accuser = (m.state === "suspect" || m.state === "dead") && m.suspected_by
      ? el("p", { class: "accuser" },
        m.state === "suspect" ? "Suspected by " : "Declared dead; accused by ",
        el("b", { class: "by", text: who(m.suspected_by) }),
        ` · ${m.confirmations} confirmation${m.confirmations === 1 ? "" : "s"}`)
      : null;
    return el("li", {
      class: `tile s-${m.state}${m.is_self ? " self" : ""}`,
      "data-addr": m.addr,
      "data-state": m.state,
    },
    el("div", { class: "tile-head" },
      badge("s", STATE, m.state),
      el("span", { class: "addr", text: m.addr }),
      m.is_self ? el("span", { class: "me", text: "this node" }) : null),
    el("div", { class: "id" }, "id ", el("code", { text: m.node_id.slice(0, 8), title: m.node_id })),
    tags.length
      ? el("ul", { class: "tags", "aria-label": "tags" },
        tags.map(([k, v]) => el("li", { text: `${k}=${v}` })))
      : null,
    facts,
    accuser,
    healthLine(m));
  }

  function healthLine(m) {
    const h = m.health;
    if (!h) return el("p", { class: "hsum none", text: "No periodic checks reported" });
    const line = healthVerdict(h);
    if (m.state !== "alive") line.prepend("Last reported: ");
    return line;
  }

  function healthVerdict(h) {
    const bad = h.failing + h.erroring;
    const total = h.passing + bad;
    if (total === 0) return el("p", { class: "hsum none", text: "No periodic checks on this host" });
    if (bad === 0) {
      return el("p", { class: "hsum ok" },
        el("span", { "aria-hidden": "true", text: "✓ " }), `${total} periodic check${total === 1 ? " passes" : "s pass"}`);
    }
    return el("p", { class: "hsum bad" },
      el("span", { "aria-hidden": "true", text: "✗ " }),
      `${bad} of ${total} failing: `,
      el("span", { class: "names", text: failingNames(h) }));
  }

  // The failing and erroring check names a summary carries, and how many it left out
  // (a node that names erroring checks apart says how many; an older one does not).
  function namesOf(h) {
    const failing = h.failing_names || [];
    const erroring = h.erroring_names || [];
    const omitted = typeof h.names_omitted === "number" && (erroring.length || h.names_omitted)
      ? h.names_omitted
      : Math.max(0, h.failing + h.erroring - failing.length - erroring.length);
    return { failing, erroring, omitted };
  }

  function failingNames(h) {
    const { failing, erroring, omitted } = namesOf(h);
    const names = [...failing, ...erroring.map((n) => `${n} (error)`)];
    return names.join(", ") + (omitted > 0 ? ` and ${omitted} more` : "");
  }

  function renderHealth(members) {
    const rows = members.map((m) => {
      const h = m.health && m.health.passing + m.health.failing + m.health.erroring > 0 ? m.health : null;
      const result = !h ? "–"
        : h.failing + h.erroring === 0 ? badge("r", CELL, "pass") : badge("r", CELL, "fail");
      const carried = h ? namesOf(h) : { failing: [], erroring: [], omitted: 0 };
      const item = (n, erroring) => {
        const asked = askedResult(m.addr, n);
        const found = asked ? asked.found : foundInOperation(m.addr, n);
        const detail = [];
        if (asked && asked.error) detail.push(asked.error);
        if (found !== null && found !== undefined) detail.push(`found ${oneLine(found)}`);
        if (asked && asked.expected) {
          detail.push(`expected${asked.negated ? " not" : ""} ${oneLine(asked.expected)}`);
        }
        return el("li", { "data-check": n }, el("code", { text: n }), erroring ? " (error)" : null,
          detail.length ? el("span", { class: "found", text: ` ${detail.join("; ")}` }) : null);
      };
      const names = [
        ...carried.failing.map((n) => item(n, false)),
        ...carried.erroring.map((n) => item(n, true)),
      ];
      if (carried.omitted > 0) names.push(el("li", { text: `and ${carried.omitted} more` }));
      return el("tr", { "data-addr": m.addr, "data-failing": h ? (h.failing_names || []).join("\n") : "" },
        el("th", { scope: "row" }, badge("s", STATE, m.state), " ", m.addr),
        el("td", {}, result),
        el("td", { text: h ? h.passing : "–" }),
        el("td", { text: h ? h.failing : "–" }),
        el("td", { text: h ? h.erroring : "–" }),
        el("td", {}, names.length ? el("ul", { class: "names" }, names) : (h ? "none" : "no periodic checks")),
        el("td", { text: h ? `${clock(h.at_unix_ms)} (${ago(h.at_unix_ms)})` : "–" }));
    });
    $("health").tBodies[0].replaceChildren(...rows);
  }

  // A found or expected map on one line: `exists: false, type: directory`.
  function oneLine(v) {
    return shown(v).replace(/\n/g, ", ");
  }

  // ---- What each host's own latest periodic run found, for its failing checks: the
  // node asks the hosts whose gossiped summary shows a failure (GET /v1/health?failing).
  let asked = new Map(); // host -> check name -> {found, expected, negated, error}
  let askedAny = false;

  async function pollHealth() {
    // Nothing fails anywhere: nobody to ask.
    if (status && !status.members.some((m) => m.health && m.health.failing + m.health.erroring > 0)) {
      if (askedAny) {
        asked = new Map();
        askedAny = false;
        renderHealth(status.members.filter(hostShown));
      }
      return;
    }
    try {
      const doc = await getJson("/v1/health?failing");
      asked = new Map(doc.hosts.filter((h) => h.checks).map((h) => [h.host, h.checks]));
      askedAny = true;
    } catch (_) {
      // The gossiped names stay; the found values wait for the next answer.
      return;
    }
    if (status) renderHealth(status.members.filter(hostShown));
  }

  function askedResult(host, check) {
    const checks = asked.get(host);
    return checks && checks[check] ? checks[check] : null;
  }

  // The found value of `check` on `host` in the chosen operation, if it reported one.
  function foundInOperation(host, check) {
    if (!operation) return null;
    const h = operation.hosts.find((x) => x.host === host);
    const r = h && h.checks ? h.checks[check] : null;
    return r && "found" in r ? r.found : null;
  }

  // ---- Operations. ----
  let operations = [];
  let operation = null; // the chosen operation's document
  let operationError = null;
  let chosenCell = null; // [host, check] of the cell whose detail is open

  function outcome(op) {
    if (op.running) return "running";
    const s = op.summary;
    if (s.hosts_unreachable > 0 || s.hosts_pending > 0) return "incomplete";
    return s.checks_failed + s.checks_errored > 0 ? "failed" : "passed";
  }

  async function pollOperations() {
    try {
      const doc = await getJson(`/v1/operations?limit=${OPERATIONS_LISTED}`);
      operations = doc.operations;
      renderOperations(null);
    } catch (e) {
      renderOperations(e.message);
    }
  }

  function renderOperations(error) {
    const ul = $("ops");
    if (error) {
      ul.replaceChildren(el("li", { class: "muted", text: `Cannot list the operations: ${error}` }));
      return;
    }
    if (!operations.length) {
      ul.replaceChildren(el("li", { class: "muted" },
        "No operations yet: run ", el("code", { text: "werify ctl operation FILE" }),
        ", or type a handle below."));
      return;
    }
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.handle : null;
    ul.replaceChildren(...operations.map((op) => {
      const s = op.summary;
      const b = el("button", {
        type: "button",
        class: "opbtn",
        "data-handle": op.handle,
        "aria-pressed": op.handle === view.op ? "true" : "false",
      },
      badge("o", OUTCOME, outcome(op)), " ",
      el("code", { text: op.handle }),
      el("span", { class: "opmeta", text:
        `${op.coordinated_here ? "coordinated here" : `by ${op.coordinator}`} · ${ago(op.submitted_unix_ms)} · ` +
        `${s.hosts_answered}/${s.hosts_targeted} hosts · ${op.checks.length} checks · ` +
        `${s.checks_passed} pass, ${s.checks_failed} fail, ${s.checks_errored} error` }));
      b.addEventListener("click", () => choose(op.handle));
      return el("li", {}, b);
    }));
    if (focused) {
      const again = ul.querySelector(`button[data-handle="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function choose(handle) {
    view.op = handle.trim();
    chosenCell = null;
    operation = null;
    operationError = null;
    writeUrl();
    for (const b of $("ops").querySelectorAll("button[data-handle]")) {
      b.setAttribute("aria-pressed", b.dataset.handle === view.op ? "true" : "false");
    }
    $("op-handle").value = view.op;
    renderOperation();
    fetchOperation();
    pollOperations();
  }

  let operationFetch = 0;
  async function fetchOperation() {
    if (!view.op) return;
    const handle = view.op;
    const mine = ++operationFetch;
    try {
      const doc = await getJson(`/v1/operations/${encodeURIComponent(handle)}`);
      if (mine !== operationFetch || handle !== view.op) return;
      operation = doc;
      operationError = null;
      const listed = operations.findIndex((o) => o.handle === doc.handle);
      if (listed >= 0) {
        const { hosts, ...rest } = doc;
        operations[listed] = { ...operations[listed], ...rest };
        renderOperations(null);
      }
    } catch (e) {
      if (mine !== operationFetch || handle !== view.op) return;
      operationError = e.message;
    }
    renderOperation();
    if (status) renderHealth(status.members.filter(hostShown));
  }

  async function pollOperation() {
    // An ended operation does not change; a running one is asked again.
    if (view.op && (!operation || operation.running || operation.handle !== view.op)) {
      await fetchOperation();
    }
  }

  function cellOf(op, host, check) {
    if (host.status === "pending") return { state: "waiting", why: "the host has not answered yet" };
    if (host.status === "unreachable") return { state: "error", why: host.error };
    const r = host.checks ? host.checks[check] : undefined;
    if (!r) return { state: "error", why: "the host's answer has no result for this check" };
    if ("error" in r) return { state: "error", why: r.error, r };
    return { state: r.success ? "pass" : "fail", r };
  }

  function cellText(host, check, c) {
    const parts = [`${host} · ${check}: ${c.state}`];
    if (c.why) parts.push(c.why);
    if (c.r && "found" in c.r) parts.push(`found: ${shown(c.r.found)}`);
    if (c.r && "expected" in c.r) {
      parts.push(`expected${c.r.negated ? " not to hold" : ""}: ${shown(c.r.expected)}`);
    }
    return parts.join("\n");
  }

  function renderOperation() {
    const box = $("op");
    if (!view.op) {
      box.replaceChildren(el("p", { class: "muted", text: "Choose an operation to see its hosts × checks grid." }));
      return;
    }
    if (!operation || operation.handle !== view.op) {
      box.replaceChildren(el("p", { class: operationError ? "error" : "muted",
        text: operationError ? `Operation ${view.op}: ${operationError}` : `Loading operation ${view.op}…` }));
      return;
    }
    const op = operation;
    const s = op.summary;
    const hosts = op.hosts.filter((h) => {
      const m = status && status.members.find((x) => x.addr === h.host);
      return !m || hostShown(m);
    });
    const hidden = op.hosts.length - hosts.length;
    const focus = document.activeElement && document.activeElement.classList.contains("cell")
      ? [document.activeElement.dataset.host, document.activeElement.dataset.check] : null;
    const head = el("tr", {}, el("th", { scope: "col", text: "Host" }),
      op.checks.map((c) => el("th", { scope: "col" }, el("code", { text: c }))));
    const rows = hosts.map((h, row) => el("tr", { "data-host": h.host },
      el("th", { scope: "row" }, h.host,
        h.took_ms !== null && h.took_ms !== undefined ? el("small", { text: ` ${duration(h.took_ms)}` }) : null),
      op.checks.map((check, col) => {
        const c = cellOf(op, h, check);
        const [icon, word] = CELL[c.state];
        const b = el("button", {
          type: "button",
          class: `cell c-${c.state}`,
          "data-host": h.host,
          "data-check": check,
          "data-state": c.state,
          "data-row": row,
          "data-col": col,
          tabindex: "-1",
          title: cellText(h.host, check, c),
          "aria-label": cellText(h.host, check, c).replace(/\n/g, "; "),
        }, el("span", { "aria-hidden": "true", text: icon }), ` ${word}`);
        b.addEventListener("click", () => {
          chosenCell = [h.host, check];
          renderCell();
        });
        return el("td", {}, b);
      })));
    const table = el("table", { class: "grid", "aria-label": `Hosts × checks of ${op.handle}` },
      el("thead", {}, head), el("tbody", {}, rows));
    table.addEventListener("keydown", gridKeys);
    box.replaceChildren(
      el("h3", {}, "Operation ", el("code", { text: op.handle }), " ", badge("o", OUTCOME, outcome(op))),
      el("p", { class: "opinfo", text:
        `Coordinated by ${op.coordinator} · submitted ${clock(op.submitted_unix_ms)}` +
        (op.running ? ` · running for ${ago(op.submitted_unix_ms).replace(" ago", "")}` : ` · took ${duration(op.took_ms)}`) }),
      el("p", { class: "opinfo", text:
        `Hosts: ${s.hosts_targeted} targeted, ${s.hosts_answered} answered, ${s.hosts_unreachable} unreachable, ${s.hosts_pending} waiting · ` +
        `checks: ${s.checks_passed} pass, ${s.checks_failed} fail, ${s.checks_errored} error` +
        (hidden ? ` · ${hidden} hosts hidden by the filter` : "") }),
      el("div", { class: "scroll" }, table),
      el("div", { id: "cell", class: "cell-detail", role: "region", "aria-label": "The chosen cell", hidden: true }));
    const cells = [...table.querySelectorAll("button.cell")];
    let current = cells[0];
    if (focus) {
      const again = cells.find((b) => b.dataset.host === focus[0] && b.dataset.check === focus[1]);
      if (again) current = again;
    }
    if (current) current.tabIndex = 0;
    if (focus && current) current.focus();
    renderCell();
  }

  function renderCell() {
    const box = $("cell");
    if (!box) return;
    if (!chosenCell || !operation) {
      box.hidden = true;
      return;
    }
    const [host, check] = chosenCell;
    const h = operation.hosts.find((x) => x.host === host);
    if (!h || !operation.checks.includes(check)) {
      box.hidden = true;
      return;
    }
    const c = cellOf(operation, h, check);
    const rows = [["Host", host], ["Check", check]];
    if (c.why) rows.push([c.state === "waiting" ? "Status" : "Error", c.why]);
    if (c.r && "found" in c.r) rows.push(["Found", shown(c.r.found)]);
    if (c.r && "expected" in c.r) {
      rows.push([c.r.negated ? "Expected not to hold" : "Expected", shown(c.r.expected)]);
    }
    if (c.r && !("found" in c.r) && !("error" in c.r)) {
      rows.push(["Found", "not reported by this version of the host"]);
    }
    const close = el("button", { type: "button", class: "close", text: "Close" });
    close.addEventListener("click", closeCell);
    box.replaceChildren(
      el("h4", {}, badge("c", CELL, c.state), " ", el("code", { text: check }), " on ", host),
      el("dl", {}, rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
      close);
    box.hidden = false;
  }

  function closeCell() {
    const was = chosenCell;
    chosenCell = null;
    renderCell();
    if (was) {
      const b = [...document.querySelectorAll("#op button.cell")]
        .find((x) => x.dataset.host === was[0] && x.dataset.check === was[1]);
      if (b) b.focus();
    }
  }

  // Arrow keys, Home and End move between the grid's cells (one tab stop for the grid).
  function gridKeys(ev) {
    const b = ev.target.closest("button.cell");
    if (!b) return;
    let row = Number(b.dataset.row);
    let col = Number(b.dataset.col);
    switch (ev.key) {
      case "ArrowUp": row -= 1; break;
      case "ArrowDown": row += 1; break;
      case "ArrowLeft": col -= 1; break;
      case "ArrowRight": col += 1; break;
      case "Home": col = 0; break;
      case "End": col = 1e9; break;
      default: return;
    }
    const cells = [...ev.currentTarget.querySelectorAll("button.cell")];
    const rows = Math.max(...cells.map((x) => Number(x.dataset.row))) + 1;
    const cols = Math.max(...cells.map((x) => Number(x.dataset.col))) + 1;
    row = Math.min(Math.max(row, 0), rows - 1);
    col = Math.min(Math.max(col, 0), cols - 1);
    const next = cells.find((x) => Number(x.dataset.row) === row && Number(x.dataset.col) === col);
    if (next) {
      ev.preventDefault();
      for (const x of cells) x.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
  }

  // ---- Events: this node's membership log, followed with ?since=SEQ. ----
  const EVENT = {
    "member-joined": ["+", "joined"],
    "member-suspect": ["▲", "suspect"],
    "member-alive": ["●", "alive again"],
    "member-dead": ["✕", "dead"],
    "member-left": ["○", "left"],
    "member-removed": ["−", "removed"],
    "member-updated": ["✎", "updated"],
    "member-health": ["♥", "health"],
    "member-reaped": ["⌫", "forgotten"],
    "self-refuted": ["●", "refuted"],
    "self-removed": ["−", "removed"],
    "self-readded": ["+", "added again"],
  };
  let events = []; // newest first, at most MAX_EVENTS
  let lastSeq = 0;
  let eventsMissed = 0;
  let eventsLogOf = null; // the node id whose log this is

  async function pollEvents() {
    const ol = $("events");
    let doc;
    try {
      doc = await getJson(`/v1/events?since=${lastSeq}`);
    } catch (e) {
      const why = e.status === 404 ? "This node keeps no event log." : `Cannot read the events: ${e.message}`;
      ol.replaceChildren(el("li", { class: "muted", text: why }));
      return;
    }
    // Another node, or the same one restarted: its log starts over.
    if (doc.node_id !== eventsLogOf || doc.next_seq <= lastSeq) {
      eventsLogOf = doc.node_id;
      events = [];
      eventsMissed = 0;
      if (lastSeq !== 0) {
        lastSeq = 0;
        return pollEvents();
      }
    }
    eventsMissed += doc.missed || 0;
    for (const ev of doc.events || []) {
      events.unshift(ev);
      lastSeq = Math.max(lastSeq, ev.seq);
    }
    if (events.length > MAX_EVENTS) {
      eventsMissed += events.length - MAX_EVENTS;
      events.length = MAX_EVENTS;
    }
    renderEvents();
  }

  function renderEvents() {
    const ol = $("events");
    // Filtered by what the member is now (as the mesh shows it), else as the event saw it.
    const now = (ev) => (status && status.members.find((m) => m.addr === ev.member_addr)) ||
      { state: ev.member_state, tags: ev.member_tags };
    const shownEvents = events.filter((ev) => hostShown(now(ev)));
    const items = shownEvents.map(eventItem);
    if (!items.length) items.push(el("li", { class: "muted", text: events.length ? "No events for the hosts shown." : "No events yet." }));
    if (eventsMissed > 0) {
      items.push(el("li", { class: "muted", text: `${eventsMissed} older events are not shown (the page keeps the latest ${MAX_EVENTS})` }));
    }
    ol.replaceChildren(...items);
  }

  function eventItem(ev) {
    const [icon, word] = EVENT[ev.event] || ["?", ev.event];
    const detail = [];
    switch (ev.event) {
      case "member-joined":
        if (ev.previous_state) detail.push(`was ${ev.previous_state}`);
        break;
      case "member-suspect":
      case "member-dead":
      case "member-removed":
      case "self-refuted":
        if (ev.accuser) {
          const by = { "member-removed": "by", "member-dead": "declared dead by" }[ev.event] || "accused by";
          detail.push(`${by} ${who(ev.accuser)}`);
        }
        if (ev.confirmations !== null && ev.confirmations !== undefined && ev.event !== "member-removed") {
          detail.push(`${ev.confirmations} confirmation${ev.confirmations === 1 ? "" : "s"}`);
        }
        break;
      case "member-updated":
        detail.push(Object.entries(ev.member_tags || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "no tags");
        break;
      case "member-health":
        if (ev.health) {
          const h = ev.health;
          detail.push(h.failing + h.erroring === 0
            ? `${h.passing} periodic check${h.passing === 1 ? " passes" : "s pass"}`
            : `${h.failing + h.erroring} of ${h.passing + h.failing + h.erroring} failing: ${failingNames(h)}`);
        }
        break;
      default:
    }
    const bad = ev.event === "member-dead" || ev.event === "member-suspect" ||
      (ev.event === "member-health" && ev.health && ev.health.failing + ev.health.erroring > 0);
    return el("li", { class: `ev${bad ? " bad" : ""}`, "data-event": ev.event, "data-addr": ev.member_addr },
      el("time", { datetime: new Date(ev.at_unix_ms).toISOString(), text: clock(ev.at_unix_ms) }),
      " ", el("span", { class: "kind" }, el("span", { "aria-hidden": "true", text: icon }), ` ${word}`),
      " ", el("span", { class: "addr", text: ev.member_addr }),
      ev.is_self ? el("span", { class: "me", text: "this node" }) : null,
      detail.length ? [" · ", el("span", { class: "detail", text: detail.join(" · ") })] : null);
  }

  // ---- Wiring. ----
  function setUp() {
    readUrl();
    $("f-state").value = view.state;
    $("op-handle").value = view.op;
    const filtered = () => {
      writeUrl();
      if (status) renderMesh();
      renderOperation();
      renderEvents();
    };
    $("f-state").addEventListener("change", (e) => {
      view.state = e.target.value;
      filtered();
    });
    $("f-tag").addEventListener("change", (e) => {
      view.tag = e.target.value;
      filtered();
    });
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    $("op-pick").addEventListener("submit", (e) => {
      e.preventDefault();
      const h = $("op-handle").value.trim();
      if (h) choose(h);
    });
    window.addEventListener("popstate", () => {
      readUrl();
      $("f-state").value = view.state;
      choose(view.op);
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && chosenCell) {
        closeCell();
        return;
      }
      const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "/") {
        e.preventDefault();
        $("f-state").focus();
      } else if (e.key === "g") {
        const cell = document.querySelector('#op button.cell[tabindex="0"]') || document.querySelector("#ops button");
        if (cell) {
          e.preventDefault();
          cell.focus();
        }
      }
    });
    renderOperation();
    every(POLL_STATUS_MS, pollStatus);
    every(POLL_OPERATIONS_MS, pollOperations);
    every(POLL_OPERATION_MS, pollOperation);
    every(POLL_EVENTS_MS, pollEvents);
    every(POLL_HEALTH_MS, pollHealth);
  }

  setUp();
})();
