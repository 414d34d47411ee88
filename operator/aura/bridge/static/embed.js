/* Aura live status: one <script> tag, no framework, no build step.
 *
 *   <script src="https://BRIDGE/ui/embed.js" data-token="aura1.…" async></script>
 *
 * Shows each Agent of the token's customer with its phase timeline and how long each phase
 * took, live from the bridge's event stream; after a dropped connection it reconnects and
 * starts again from a fresh snapshot. Optional: data-target="element-id" to render there.
 * The shared helpers are window.AuraStatus (the fleet page uses them too). */
(function () {
  "use strict";
  var STEPS = ["Queued", "Provisioning", "Configuring", "Networking", "Running"];
  var LIFECYCLE = ["Starting", "Degraded", "Stopping", "Stopped", "Suspended", "Hibernating",
    "Hibernated", "Failed", "Deleting", "Deleted"];
  var ICON = { done: "\u2713", current: "\u25CF", todo: "\u25CB" };
  var WORD = { done: "done", current: "now", todo: "not yet" };
  var SAY = { done: "done", current: "current step", todo: "not reached yet" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function duration(seconds) {
    var s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function claims(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch (e) { return {}; }
  }

  /* Phase visits, oldest first: [{phase, start (ms), end (ms or null)}]. The operator records
   * each phase change as an Event whose reason is the new phase ("A -> B after Ns in A");
   * the current phase comes from the Agent's status (phaseSince), which may be newer. */
  function timeline(history, view) {
    var known = STEPS.concat(LIFECYCLE);
    var visits = [];
    (history || []).forEach(function (e) {
      if (known.indexOf(e.reason) < 0 || (e.message || "").indexOf("->") < 0 || !e.time) return;
      visits.push({ phase: e.reason, start: Date.parse(e.time), end: null });
    });
    if (view && view.phase) {
      var since = view.phaseSince ? Date.parse(view.phaseSince) : null;
      var last = visits[visits.length - 1];
      if (!last || last.phase !== view.phase || (since && since - last.start > 1000)) {
        visits.push({ phase: view.phase, start: since || Date.now(), end: null });
      }
    }
    for (var i = 0; i + 1 < visits.length; i++) visits[i].end = visits[i + 1].start;
    return visits;
  }

  /* Server-sent events over fetch (an EventSource cannot send the Authorization header).
   * onEvent(kind, data) for each event; onState("live" | "reconnecting"); on any end or error
   * it reconnects with a growing pause, and the bridge starts every stream with a snapshot. */
  function stream(url, token, onEvent, onState) {
    var stopped = false, pause = 250, controller = null;
    function connect() {
      if (stopped) return;
      controller = new AbortController();
      fetch(url, { headers: { Authorization: "Bearer " + token }, signal: controller.signal,
        cache: "no-store" })
        .then(function (response) {
          if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
          onState("live");
          pause = 250;
          var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
          function pump() {
            return reader.read().then(function (r) {
              if (r.done) return;
              buffer += decoder.decode(r.value, { stream: true });
              var cut;
              while ((cut = buffer.indexOf("\n\n")) >= 0) {
                var block = buffer.slice(0, cut);
                buffer = buffer.slice(cut + 2);
                var kind = "message", data = "";
                block.split("\n").forEach(function (line) {
                  if (line.indexOf("event: ") === 0) kind = line.slice(7);
                  else if (line.indexOf("data: ") === 0) data += line.slice(6);
                });
                if (data) onEvent(kind, JSON.parse(data));
              }
              return pump();
            });
          }
          return pump();
        })
        .catch(function () { /* reconnect below */ })
        .then(function () {
          if (stopped) return;
          onState("reconnecting");
          setTimeout(connect, pause);
          pause = Math.min(pause * 2, 5000);
        });
    }
    connect();
    return { close: function () { stopped = true; if (controller) controller.abort(); } };
  }

  function api(base, token, path) {
    return fetch(base + path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error(path + ": HTTP " + r.status);
        return r.json();
      });
  }

  function stepState(visits, view, step) {
    if (view.phase === step) return step === "Running" ? "done" : "current";
    var idx = STEPS.indexOf(view.phase);
    if (idx >= 0) return STEPS.indexOf(step) < idx ? "done" : "todo";
    return visits.some(function (v) { return v.phase === step; }) ? "done" : "todo";
  }

  function tookFor(visits, phase, now) {
    var total = null;
    visits.forEach(function (v) {
      if (v.phase === phase) total = (total || 0) + ((v.end || now) - v.start) / 1000;
    });
    return total;
  }

  /* One Agent as an <article>: its phase in words, the five steps, the lifecycle phase. */
  function card(view, visits, now) {
    var id = "aura-" + view.namespace + "-" + view.name;
    var since = view.phaseSince ? (now - Date.parse(view.phaseSince)) / 1000 : null;
    var phase = view.phase || "No status yet";
    var steps = el("ol", { class: "aura-steps", "aria-label": "Provisioning steps" },
      STEPS.map(function (step) {
        var state = stepState(visits, view, step);
        var took = tookFor(visits, step, now);
        var li = el("li", { class: "aura-step aura-" + state, "data-step": step }, [
          el("span", { class: "aura-icon", "aria-hidden": "true", text: ICON[state] }),
          el("span", { class: "aura-name", text: step }),
          el("span", { class: "aura-sr", text: " (" + SAY[state] + ")" }),
          el("span", { class: "aura-took", text: took === null ? WORD[state] :
            (state === "current" ? duration(took) + " so far" : duration(took)) }),
        ]);
        if (view.phase === step) li.setAttribute("aria-current", "step");
        return li;
      }));
    var now_ = el("p", { class: "aura-now" }, [
      el("span", { class: "aura-badge aura-ph-" + (view.phase || "none").toLowerCase(),
        text: phase }),
      el("span", { class: "aura-since", text: since === null ? "" : " for " + duration(since) }),
    ]);
    var extra = null;
    if (phase === "Failed" || phase === "Degraded") {
      var ready = (view.conditions || []).filter(function (c) { return c.type === "Ready"; })[0];
      extra = el("p", { class: "aura-reason", role: "note",
        text: phase + " \u2014 reason: " + ((ready && ready.reason) || "unknown") +
          (view.message ? ": " + view.message : "") });
    } else if (LIFECYCLE.indexOf(phase) >= 0 && view.desiredStateReason) {
      extra = el("p", { class: "aura-reason", text: "Why: " + view.desiredStateReason });
    }
    var past = el("ol", { class: "aura-history" }, visits.map(function (v) {
      var took = ((v.end || now) - v.start) / 1000;
      return el("li", { text: v.phase + ": " + duration(took) + (v.end ? "" : " so far") });
    }));
    return el("article", { class: "aura-agent", id: id, "aria-labelledby": id + "-h",
      "data-phase": phase }, [
      el("h3", { id: id + "-h", text: view.name }),
      now_, extra, steps,
      visits.length ? el("details", {}, [el("summary", { text: "Phase history" }), past]) : null,
    ]);
  }

  /* The embeddable view: the customer's Agents, live. */
  function mount(script) {
    var token = script.getAttribute("data-token");
    var base = new URL(script.src, document.baseURI).origin;
    var customer = claims(token).cus;
    if (!document.querySelector("link[data-aura-css]")) {
      document.head.appendChild(el("link", { rel: "stylesheet", href: base + "/ui/embed.css",
        "data-aura-css": "" }));
    }
    var target = script.getAttribute("data-target");
    var list = el("div", { class: "aura-list" });
    var conn = el("p", { class: "aura-conn", role: "status", text: "Connecting\u2026" });
    var say = el("p", { class: "aura-sr", "aria-live": "polite" });
    var root = el("section", { class: "aura-status", "aria-label": "Agent status" }, [
      el("h2", { text: "Your agents" }), conn, say, list]);
    if (target && document.getElementById(target)) document.getElementById(target).appendChild(root);
    else script.parentNode.insertBefore(root, script.nextSibling);
    var views = {}, histories = {};

    function key(v) { return v.namespace + "/" + v.name; }
    function render() {
      var now = Date.now();
      var open = {};
      list.querySelectorAll("details[open]").forEach(function (d) {
        open[d.closest("article").id] = true;
      });
      var keys = Object.keys(views).sort();
      list.replaceChildren.apply(list, keys.map(function (k) {
        var node = card(views[k], timeline(histories[k], views[k]), now);
        var details = node.querySelector("details");
        if (details && open[node.id]) details.open = true;
        return node;
      }));
      if (!keys.length) list.appendChild(el("p", { text: "No agents yet." }));
    }
    function loadHistory(v) {
      return api(base, token, "/v1/agents/" + v.namespace + "/" + v.name + "/history")
        .then(function (h) { histories[key(v)] = h.items; render(); }, function () {});
    }
    function onEvent(kind, v) {
      var k = key(v), old = views[k];
      if (kind === "deleted") { delete views[k]; render(); return; }
      views[k] = v;
      if (!old || old.phase !== v.phase) {
        if (old) say.textContent = v.name + " is now " + v.phase;
        render();
        if (kind !== "snapshot") loadHistory(v);  // snapshots: refresh() reads every history
      } else render();
    }
    /* Every (re)connection starts from a fresh list: Agents deleted while the connection was
     * down disappear, and every history is read again. */
    function refresh() {
      return api(base, token, "/v1/agents?customer=" + encodeURIComponent(customer))
        .then(function (listed) {
          var fresh = {};
          listed.items.forEach(function (v) {
            var had = views[key(v)];  // a stream event may be newer than the listing
            fresh[key(v)] = had && (had.phaseSince || "") > (v.phaseSince || "") ? had : v;
          });
          views = fresh;
          render();
          listed.items.forEach(loadHistory);
        }, function () {});
    }
    function onState(state) {
      conn.textContent = state === "live" ? "Live" : "Reconnecting\u2026";
      conn.setAttribute("data-state", state);
      if (state === "live") refresh();
    }
    if (!customer) { conn.textContent = "This status view needs a customer token."; return; }
    stream(base + "/v1/customers/" + encodeURIComponent(customer) + "/events", token,
      onEvent, onState);
    setInterval(render, 5000);
  }

  window.AuraStatus = { STEPS: STEPS, LIFECYCLE: LIFECYCLE, duration: duration, claims: claims,
    timeline: timeline, stream: stream, api: api, card: card, el: el };
  var me = document.currentScript;
  if (me && me.getAttribute("data-token")) mount(me);
})();
