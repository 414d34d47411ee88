/* The fleet page: every Agent, filters, a page per Agent, live from /v1/fleet/events.
 * Routes live in the fragment: "#" (the fleet), "#agent=NAMESPACE/NAME", and "#token=…" once,
 * to hand over a token (moved to sessionStorage and removed from the address bar). */
(function () {
  "use strict";
  var A = window.AuraStatus, el = A.el;
  var $ = function (id) { return document.getElementById(id); };
  var token = null, rows = {}, fleet = { canWrite: false }, views = {}, agentEvents = [];
  var reloadTimer = null;

  function key(v) { return v.namespace + "/" + v.name; }
  function since(iso) { return iso ? A.duration((Date.now() - Date.parse(iso)) / 1000) : ""; }
  function cost(c) {
    if (!c) return "";
    var amount = c.monthlyEstimate || c.monthly || c.total || c.amount;
    if (amount !== undefined) return amount + " " + (c.currency || "") + (c.monthlyEstimate || c.monthly ? "/mo" : "");
    return Object.keys(c).map(function (k) { return k + " " + c[k]; }).join(", ");
  }
  function call(method, path) {
    return fetch(path, { method: method, headers: { Authorization: "Bearer " + token },
      cache: "no-store" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.detail || ("HTTP " + r.status));
        return body;
      });
    });
  }
  function fail(err) { $("error").textContent = String(err.message || err); }

  function actionButtons(row) {
    if (!fleet.canWrite) return [];
    return (row.actions || []).map(function (action) {
      var b = el("button", { type: "button", "data-action": action,
        "aria-label": action + " " + row.name, text: action[0].toUpperCase() + action.slice(1) });
      b.addEventListener("click", function () {
        b.disabled = true;
        call("POST", "/v1/agents/" + row.namespace + "/" + row.name + "/actions/" + action)
          .then(function () {
            $("say").textContent = action + " requested for " + row.name;
            reload();
          }, fail);
      });
      return b;
    });
  }

  function fillSelect(select, values) {
    var current = select.value;
    var options = [el("option", { value: "", text: "all" })].concat(values.map(function (v) {
      return el("option", { value: v, text: v });
    }));
    select.replaceChildren.apply(select, options);
    select.value = values.indexOf(current) >= 0 ? current : "";
  }

  function renderFleet() {
    var all = Object.keys(rows).sort().map(function (k) { return rows[k]; });
    var uniq = function (f) {
      return all.map(f).filter(function (v, i, a) { return v && a.indexOf(v) === i; }).sort();
    };
    fillSelect($("f-phase"), uniq(function (r) { return r.phase; }));
    fillSelect($("f-ns"), uniq(function (r) { return r.namespace; }));
    var phase = $("f-phase").value, ns = $("f-ns").value, cus = $("f-cus").value.trim();
    var shown = all.filter(function (r) {
      return (!phase || r.phase === phase) && (!ns || r.namespace === ns) &&
        (!cus || (r.customerId || "").indexOf(cus) >= 0);
    });
    $("count").textContent = "(" + shown.length + " of " + all.length + ")";
    var body = $("table").tBodies[0];
    body.replaceChildren.apply(body, shown.map(function (r) {
      var ev = r.lastEvent;
      return el("tr", { "data-agent": key(r), "data-phase": r.phase || "" }, [
        el("th", { scope: "row" }, [el("a", { href: "#agent=" + key(r), text: key(r) })]),
        el("td", {}, [el("span", { class: "aura-badge aura-ph-" + (r.phase || "").toLowerCase(),
          text: r.phase || "No status yet" })]),
        el("td", { text: since(r.phaseSince) }),
        el("td", { text: r.desiredState || "" }),
        el("td", { text: r.customerId || "" }),
        el("td", { text: cost(r.cost) }),
        el("td", { class: "fleet-event", text: ev ? ev.reason + ": " + ev.message : "" }),
        el("td", {}, actionButtons(r)),
      ]);
    }));
  }

  function renderAgent(k) {
    var v = views[k], row = rows[k];
    if (!v) return;
    $("agent-h").textContent = k;
    $("agent-card").replaceChildren(A.card(v, A.timeline(agentEvents, v), Date.now()));
    $("agent-actions").replaceChildren.apply($("agent-actions"), row ? actionButtons(row) : []);
    var body = $("conditions").tBodies[0];
    body.replaceChildren.apply(body, (v.conditions || []).map(function (c) {
      return el("tr", {}, [el("th", { scope: "row", text: c.type }), el("td", { text: c.status }),
        el("td", { text: c.reason || "" }), el("td", { text: c.message || "" }),
        el("td", { text: c.lastTransitionTime || "" })]);
    }));
    $("events").replaceChildren.apply($("events"), agentEvents.slice().reverse().map(function (e) {
      return el("li", { class: e.type === "Warning" ? "fleet-warning" : "",
        text: (e.time || "") + " \u2014 " + (e.type === "Warning" ? "Warning " : "") + e.reason +
          ": " + e.message + " (" + e.reporter + ")" });
    }));
  }

  function route() {
    var m = /^#agent=([^/]+)\/(.+)$/.exec(location.hash);
    $("fleet").hidden = !!m;
    $("agent").hidden = !m;
    if (!m) { renderFleet(); return; }
    var k = m[1] + "/" + m[2];
    Promise.all([call("GET", "/v1/agents/" + k), call("GET", "/v1/agents/" + k + "/history")])
      .then(function (got) {
        views[k] = got[0];
        agentEvents = got[1].items;
        renderAgent(k);
      }, fail);
  }

  function reload() {
    return call("GET", "/v1/fleet").then(function (f) {
      fleet = f;
      rows = {};
      f.items.forEach(function (r) { rows[key(r)] = r; });
      $("who").textContent = f.canWrite ? "Acting as " + f.subject : "Read-only";
      route();
    }, fail);
  }

  function onEvent(kind, v) {
    var k = key(v), row = rows[k];
    if (kind === "deleted") { delete rows[k]; }
    else {
      if (!row) row = rows[k] = { namespace: v.namespace, name: v.name, actions: [] };
      if (row.phase && row.phase !== v.phase) $("say").textContent = k + " is now " + v.phase;
      ["phase", "phaseSince", "desiredState", "customerId", "message", "cost"].forEach(
        function (f) { row[f] = v[f]; });
    }
    if (!$("agent").hidden && views[k]) { views[k] = v; renderAgent(k); }
    else renderFleet();
    clearTimeout(reloadTimer);  // last Event and allowed actions come from the server
    reloadTimer = setTimeout(reload, 400);
  }

  function start() {
    $("signin").hidden = true;
    reload();
    A.stream("/v1/fleet/events", token, onEvent, function (state) {
      $("conn").textContent = state === "live" ? "Live" : "Reconnecting\u2026";
      $("conn").setAttribute("data-state", state);
      if (state === "live") reload();
    });
    setInterval(function () { if ($("agent").hidden) renderFleet(); }, 5000);
  }

  var handed = /^#token=(.+)$/.exec(location.hash);
  if (handed) {
    sessionStorage.setItem("aura-token", decodeURIComponent(handed[1]));
    window.history.replaceState(null, "", location.pathname);
  }
  token = sessionStorage.getItem("aura-token");
  ["f-phase", "f-ns", "f-cus"].forEach(function (id) {
    $(id).addEventListener("input", renderFleet);
  });
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  window.addEventListener("hashchange", route);
  $("signin").addEventListener("submit", function (e) {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("aura-token", token);
    start();
  });
  if (token) start(); else $("signin").hidden = false;
})();
