// Dockyard's dashboard: the few things that need a script. No inline script anywhere (the
// pages' Content-Security-Policy allows scripts from this server only).
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]');

  // htmx requests carry the session's CSRF token, as the forms do.
  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) { event.detail.headers["X-CSRF-Token"] = csrf.content; }
  });

  // A button with data-confirm asks first.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // -- ANSI colours (SGR) as spans -------------------------------------------------------------
  var SGR = /\x1b\[([0-9;]*)m/g;
  var OTHER_ESCAPES = /\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]/g;

  function color256(n) {
    if (n < 16) {
      var base = [[0,0,0],[205,49,49],[13,188,121],[229,229,16],[36,114,200],[188,63,188],
        [17,168,205],[229,229,229],[102,102,102],[241,76,76],[35,209,139],[245,245,67],
        [59,142,234],[214,112,214],[41,184,219],[255,255,255]][n];
      return "rgb(" + base.join(",") + ")";
    }
    if (n < 232) {
      n -= 16;
      var steps = [0, 95, 135, 175, 215, 255];
      return "rgb(" + steps[Math.floor(n / 36)] + "," + steps[Math.floor(n / 6) % 6] + "," + steps[n % 6] + ")";
    }
    var grey = 8 + (n - 232) * 10;
    return "rgb(" + grey + "," + grey + "," + grey + ")";
  }

  function applyCodes(state, codes) {
    for (var i = 0; i < codes.length; i++) {
      var c = codes[i];
      if (c === 0) { state = {}; }
      else if (c === 1) { state.b = true; } else if (c === 2) { state.d = true; }
      else if (c === 3) { state.i = true; } else if (c === 4) { state.u = true; }
      else if (c === 22) { state.b = state.d = false; } else if (c === 23) { state.i = false; }
      else if (c === 24) { state.u = false; }
      else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) { state.fg = "a-" + c; state.fgRgb = null; }
      else if (c === 39) { state.fg = state.fgRgb = null; }
      else if (c >= 40 && c <= 47) { state.bg = "a-" + c; state.bgRgb = null; }
      else if (c === 49) { state.bg = state.bgRgb = null; }
      else if ((c === 38 || c === 48) && codes[i + 1] === 5 && i + 2 < codes.length) {
        state[c === 38 ? "fgRgb" : "bgRgb"] = color256(codes[i + 2]); i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2 && i + 4 < codes.length) {
        state[c === 38 ? "fgRgb" : "bgRgb"] = "rgb(" + codes.slice(i + 2, i + 5).join(",") + ")"; i += 4;
      }
    }
    return state;
  }

  function copy(state) { var out = {}; for (var k in state) { out[k] = state[k]; } return out; }

  // The text of one line as nodes: coloured spans, never HTML from the line itself.
  function ansiNodes(text) {
    var nodes = [], state = {}, last = 0, match;
    text = text.replace(OTHER_ESCAPES, "");
    SGR.lastIndex = 0;
    function push(part) {
      if (!part) { return; }
      var classes = [];
      if (state.b) { classes.push("a-b"); } if (state.d) { classes.push("a-d"); }
      if (state.i) { classes.push("a-i"); } if (state.u) { classes.push("a-u"); }
      if (state.fg) { classes.push(state.fg); } if (state.bg) { classes.push(state.bg); }
      if (!classes.length && !state.fgRgb && !state.bgRgb) { nodes.push(document.createTextNode(part)); return; }
      var span = document.createElement("span");
      span.className = classes.join(" ");
      if (state.fgRgb) { span.style.color = state.fgRgb; }
      if (state.bgRgb) { span.style.backgroundColor = state.bgRgb; }
      span.textContent = part;
      nodes.push(span);
    }
    while ((match = SGR.exec(text)) !== null) {
      push(text.slice(last, match.index));
      var codes = match[1] === "" ? [0] : match[1].split(";").map(function (x) { return parseInt(x || "0", 10); });
      state = applyCodes(copy(state), codes);
      last = SGR.lastIndex;
    }
    push(text.slice(last));
    return nodes;
  }
  window.dockyardAnsi = ansiNodes;

  // -- logs, followed live ----------------------------------------------------------------------
  var MAX_LINES = 5000;
  var log = document.getElementById("log");
  var status = document.getElementById("log-state");
  if (log && log.dataset.src && window.EventSource) {
    var source = new EventSource(log.dataset.src);
    var say = function (text) { if (status) { status.textContent = text; } };
    source.addEventListener("open", function () { say("live"); log.dataset.live = "true"; });
    source.addEventListener("log", function (event) {
      var entry = JSON.parse(event.data);
      var stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      var line = document.createElement("div");
      line.className = "line " + entry.type;
      line.dataset.service = entry.service;
      var src = document.createElement("span");
      src.className = entry.type === "build" ? "src build" : "src";
      src.textContent = entry.service + (entry.type === "build" ? " (build)" : "") + " | ";
      line.appendChild(src);
      ansiNodes(entry.line).forEach(function (node) { line.appendChild(node); });
      log.appendChild(line);
      while (log.childNodes.length > MAX_LINES) { log.removeChild(log.firstChild); }
      if (stick) { log.scrollTop = log.scrollHeight; }
    });
    source.addEventListener("end", function () { source.close(); say("end of the log"); log.dataset.live = "ended"; });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) { say("disconnected: reload the page"); log.dataset.live = "closed"; }
      else { say("reconnecting..."); }
    });
  }
})();
