// Paper B's one-hidden-layer ReLU nets trained live in the page, in float64, with no kernel and no library.
// One classic script (no module: a page opened from file:// may not load modules), filling every element of class
// "badminima-live" from the JSON data its data-source names (badminima.paper_b.live.page_data writes it).
(function () {
  "use strict";
  if (window.badminimaLive) { return; }   // a second copy of the script on the page
  var api = {};
  window.badminimaLive = api;

  // ---- data as the page receives it ----------------------------------------------------------------------------

  function decode(b64) {   // float64 little-endian bytes, base64 (live.encode): exact for the stored float32s
    var bin = atob(b64), view = new DataView(new ArrayBuffer(bin.length)), out = new Float64Array(bin.length / 8);
    for (var i = 0; i < bin.length; i++) { view.setUint8(i, bin.charCodeAt(i)); }
    for (var k = 0; k < out.length; k++) { out[k] = view.getFloat64(8 * k, true); }
    return out;
  }

  function labels(text) {
    var out = new Float64Array(text.length);
    for (var i = 0; i < text.length; i++) { out[i] = text.charCodeAt(i) - 48; }
    return out;
  }

  // ---- the net: forward pass, loss and gradient, as torch computes them in float64 ------------------------------
  // A state is one Float64Array in live.PARAMS' order: weights.0 (2 x p, input-major: w[j] for input 0, w[p + j]
  // for input 1), biases.0 (p), weights.1 (p), biases.1 (1). Every sum runs over points (or units) in index order.

  function Engine(p, n) {
    this.p = p; this.n = n;
    this.h = new Float64Array(n * p);      // hidden activations, kept for the backward pass
    this.z = new Float64Array(n);          // logits
    this.grad = new Float64Array(4 * p + 1);
  }

  // Logits of m points. Mirrors models.MLP.forward: torch.baddbmm(b, x, W) (x0 W0 + x1 W1, then + b), torch.relu,
  // then the readout's multiply-and-sum (sum_j h_j v_j, then + c).
  Engine.prototype.forward = function (w, x, m, z, keep) {
    var p = this.p, h = this.h, c = w[4 * p];
    for (var i = 0; i < m; i++) {
      var x0 = x[2 * i], x1 = x[2 * i + 1], s = 0, row = i * p;
      for (var j = 0; j < p; j++) {
        var a = (x0 * w[j] + x1 * w[p + j]) + w[2 * p + j];
        var hj = a > 0 ? a : 0;
        if (keep) { h[row + j] = hj; }
        s += hj * w[3 * p + j];
      }
      z[i] = s + c;
    }
  };

  // Mean loss and accuracy at logits z. Mirrors F.binary_cross_entropy_with_logits (mean) in its stable form
  // max(z, 0) - z y + log1p(exp(-|z|)); a point is classified 1 when its logit is > 0 (metrics.predict).
  function lossAndAccuracy(z, y, m) {
    var loss = 0, correct = 0;
    for (var i = 0; i < m; i++) {
      var zi = z[i];
      loss += (zi > 0 ? zi : 0) - zi * y[i] + Math.log1p(Math.exp(-Math.abs(zi)));
      if ((zi > 0 ? 1 : 0) === y[i]) { correct++; }
    }
    return {loss: loss / m, acc: correct / m};
  }

  // The gradient of the mean loss at the last forward pass (keep = true). Mirrors autograd through the above:
  // binary_cross_entropy_with_logits' backward (sigmoid(z) - y) / n, the multiply-and-sum's (dv_j = sum_i g_i h_ij,
  // dh_ij = g_i v_j), relu's (passes where h > 0) and baddbmm's (dW = x^T dA, db = sum_i dA_i).
  Engine.prototype.backward = function (w, x, y) {
    var p = this.p, n = this.n, h = this.h, z = this.z, g = this.grad;
    g.fill(0);
    for (var i = 0; i < n; i++) {
      var gi = (1 / (1 + Math.exp(-z[i])) - y[i]) / n, x0 = x[2 * i], x1 = x[2 * i + 1], row = i * p;
      for (var j = 0; j < p; j++) {
        var hj = h[row + j];
        g[3 * p + j] += gi * hj;
        if (hj > 0) {
          var da = gi * w[3 * p + j];
          g[j] += x0 * da;
          g[p + j] += x1 * da;
          g[2 * p + j] += da;
        }
      }
      g[4 * p] += gi;
    }
  };

  // ---- one run: a start, labels, a step size, the stopping rule -----------------------------------------------
  // As core/train.py's `train` stops: at the first step t >= 1 whose weights classify every training point
  // correctly (fit_step = t), at a non-finite loss (diverged), or after `cap` steps.

  function Run(w, x, y, lr, cap) {
    this.w = Float64Array.from(w); this.x = x; this.y = y; this.lr = lr; this.cap = cap;
    this.engine = new Engine(w.length >> 2, y.length);
    this.t = 0; this.done = null;
  }

  // Up to `steps` steps of full-batch gradient descent; returns how many it took. Each step's forward pass first
  // checks the weights it starts from (as `train`'s does); the update is torch.optim.SGD's without momentum, w - lr g.
  Run.prototype.advance = function (steps) {
    var e = this.engine, w = this.w, g = e.grad, lr = this.lr, taken = 0;
    while (!this.done && taken < steps) {
      e.forward(w, this.x, e.n, e.z, true);
      var seen = lossAndAccuracy(e.z, this.y, e.n);
      if (!isFinite(seen.loss)) { this.done = "diverged"; break; }
      if (this.t >= 1 && seen.acc === 1) { this.done = "fitted"; break; }
      if (this.t >= this.cap) { this.done = "cap"; break; }
      e.backward(w, this.x, this.y);
      for (var k = 0; k < w.length; k++) { w[k] -= lr * g[k]; }
      this.t++; taken++;
    }
    return taken;
  };

  Run.prototype.measure = function () {   // loss and accuracy at the current weights, without a step
    var e = this.engine;
    e.forward(this.w, this.x, e.n, e.z, false);
    return lossAndAccuracy(e.z, this.y, e.n);
  };

  function accuracyOn(w, x, y) {
    var m = y.length, e = new Engine(w.length >> 2, 0), z = new Float64Array(m);
    e.forward(w, x, m, z, false);
    return lossAndAccuracy(z, y, m).acc;
  }

  // ---- the page ---------------------------------------------------------------------------------------------

  var STYLE = ".badminima-live{font-size:.9rem}.bl-controls{display:flex;flex-wrap:wrap;gap:.4rem 1rem;" +
    "align-items:center;margin:.5rem 0}.badminima-live label{display:flex;gap:.3rem;align-items:center}" +
    ".badminima-live button,.badminima-live select,.badminima-live input{font:inherit;padding:.15rem .4rem}" +
    ".badminima-live :focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}" +
    ".bl-panels{display:flex;flex-wrap:wrap;gap:1rem}.bl-panel{flex:1 1 300px;max-width:340px}" +
    ".bl-panel canvas{display:block;width:100%;border:1px solid #bbb;margin:.3rem 0}" +
    ".bl-status{font-family:monospace;font-size:.8rem;margin:.2rem 0}.bl-note{color:#8a4b00}";
  var GRID = 96;          // the boundary heatmap's cells per side
  var FRAME_MS = 25;      // the most a frame trains before it hands the page back (responsive at any width)
  var BOUNDARY_MS = 200;  // the heatmap is redrawn at most this often while training
  var COLORS = [[59, 117, 175], [239, 134, 54]];   // class 0 and class 1 (matplotlib's first two colours)

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function select(label, options, value) {
    var s = el("select", {"aria-label": label});
    options.forEach(function (o) { s.appendChild(el("option", {value: String(o[0]), text: o[1]})); });
    s.value = String(value);
    return {box: el("label", {}, [el("span", {text: label}), s]), input: s};
  }

  function Live(root, data) {
    this.root = root; this.data = data; this.cache = {}; this.playing = false;
    this.build();
    this.reset();
  }

  Live.prototype.build = function () {
    var d = this.data, self = this;
    var c = this.controls = {
      dataset: select("Data set", d.datasets, d.datasets[0][0]),
      width: select("Width p", d.widths.map(function (p) { return [p, String(p)]; }),
                    d.widths[Math.min(2, d.widths.length - 1)]),
      seed: select("Seed", d.seeds.map(function (s) { return [s, String(s)]; }), d.seeds[0]),
      phase: select("Labels", [["2", "phase 2: true labels"], ["1", "phase 1: random labels"]], "2"),
      speed: select("Steps per frame", [[1, "1"], [10, "10"], [100, "100"], [1000, "1,000"], [10000, "10,000"],
                                        [1e9, "as many as fit in " + FRAME_MS + " ms"]], 1000)};
    this.lr = el("input", {type: "number", min: "0.0001", max: "10", step: "0.001", value: String(d.lr),
                           "aria-label": "Step size", disabled: ""});
    this.lrNote = el("span", {"class": "bl-note"});
    this.buttons = {run: el("button", {type: "button", text: "Run"}),
                    pause: el("button", {type: "button", text: "Pause"}),
                    reset: el("button", {type: "button", text: "Reset"})};
    var bar = el("div", {"class": "bl-controls"}, [c.dataset.box, c.width.box, c.seed.box, c.phase.box,
      el("label", {}, [el("span", {text: "Step size"}), this.lr]), this.lrNote, c.speed.box,
      this.buttons.run, this.buttons.pause, this.buttons.reset]);
    this.panels = [0, 1].map(function (i) { return self.panel(i); });
    this.root.textContent = "";
    this.root.appendChild(el("style", {text: STYLE}));
    this.root.appendChild(bar);
    this.root.appendChild(el("div", {"class": "bl-panels"}, this.panels.map(function (p) { return p.box; })));
    ["dataset", "width", "seed", "phase"].forEach(function (k) {
      c[k].input.addEventListener("change", function () { self.reset(); });
    });
    this.lr.addEventListener("change", function () { self.reset(); });
    this.buttons.run.addEventListener("click", function () { self.play(); });
    this.buttons.pause.addEventListener("click", function () { self.pause(); });
    this.buttons.reset.addEventListener("click", function () { self.reset(); });
  };

  Live.prototype.panel = function (i) {
    var self = this, starts = this.data.starts;
    var start = select("Start", starts.map(function (s) { return [s, s]; }), starts[Math.min(i, starts.length - 1)]);
    var p = {start: start.input, boundary: el("canvas", {width: "320", height: "320", role: "img"}),
             curves: el("canvas", {width: "320", height: "200", role: "img",
                                   "aria-label": "training and test accuracy and loss against steps"}),
             status: el("p", {"class": "bl-status", "aria-live": "off"}), outcome: el("p", {"aria-live": "polite"})};
    p.box = el("div", {"class": "bl-panel"}, [start.box, p.boundary, p.curves, p.status, p.outcome]);
    start.input.addEventListener("change", function () { self.reset(); });
    return p;
  };

  Live.prototype.key = function () {
    var c = this.controls;
    return {points: c.dataset.input.value + "/" + c.seed.input.value,
            cell: c.dataset.input.value + "/" + c.width.input.value + "/" + c.seed.input.value};
  };

  Live.prototype.points = function (key) {   // decoded once per data set and seed
    if (!this.cache[key]) {
      var raw = this.data.points[key];
      var pts = {x: decode(raw.x), y: labels(raw.y), yRandom: labels(raw.y_random), xTest: decode(raw.x_test),
                 yTest: labels(raw.y_test)};
      var all = Array.prototype.slice.call(pts.x).concat(Array.prototype.slice.call(pts.xTest));
      var lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
      for (var i = 0; i < all.length; i++) {
        lo[i % 2] = Math.min(lo[i % 2], all[i]);
        hi[i % 2] = Math.max(hi[i % 2], all[i]);
      }
      var half = 0.55 * Math.max(hi[0] - lo[0], hi[1] - lo[1]);   // a square view, 5% beyond the farthest point
      pts.view = {cx: (lo[0] + hi[0]) / 2, cy: (lo[1] + hi[1]) / 2, half: half};
      this.cache[key] = pts;
    }
    return this.cache[key];
  };

  Live.prototype.phase = function () { return this.controls.phase.input.value; };

  Live.prototype.reset = function () {
    this.pause();
    var d = this.data, key = this.key(), pts = this.points(key.points), phase = this.phase();
    if (phase === "2") { this.lr.value = String(d.lr); }
    this.lr.disabled = phase === "2";
    var lr = Number(this.lr.value);
    if (!(lr > 0)) { lr = d.lr; this.lr.value = String(lr); }
    this.lrNote.textContent = lr !== d.lr ? "(not the paper's step " + d.lr + ")" :
      (phase === "1" ? "(the paper's step)" : "(the paper's step; phase 1 lets you change it)");
    var y = phase === "2" ? pts.y : pts.yRandom;
    this.panels.forEach(function (p) {
      var start = p.start.value;
      p.cellKey = key.cell; p.points = pts; p.phase = phase; p.startName = start;
      p.run = new Run(decode(d.cells[key.cell].starts[start]), pts.x, y, lr, d.cap);
      p.curve = {step: [], train: [], test: [], loss: []};
      p.outcome.textContent = "";
      p.boundary.setAttribute("aria-label", "decision boundary of the " + start + " start with the points");
      this.record(p);
      this.draw(p);
    }, this);
  };

  Live.prototype.record = function (p) {
    var seen = p.run.measure(), c = p.curve, yTest = p.points.yTest;
    c.step.push(p.run.t); c.loss.push(seen.loss); c.train.push(seen.acc);
    c.test.push(p.phase === "2" ? accuracyOn(p.run.w, p.points.xTest, yTest) : NaN);
    if (c.step.length > 1200) {   // keep the curves light on long runs: every other point of the older half
      ["step", "train", "test", "loss"].forEach(function (k) {
        c[k] = c[k].filter(function (v, i) { return i % 2 === 0 || i >= c[k].length - 200; });
      });
    }
  };

  Live.prototype.play = function () {
    if (this.playing) { return; }
    this.playing = true;
    var self = this;
    var frame = function () {
      if (!self.playing) { return; }
      var budget = Number(self.controls.speed.input.value), now = performance.now();
      var active = self.panels.filter(function (p) { return !p.run.done; });
      active.forEach(function (p) {
        var left = budget, t0 = performance.now();   // in chunks, so that no width holds the frame past FRAME_MS
        while (left > 0 && !p.run.done && performance.now() - t0 < FRAME_MS / active.length) {
          left -= Math.max(1, p.run.advance(Math.min(left, 50)));
        }
        self.record(p);
        if (p.run.done) { self.finish(p); }
        // The heatmap costs a forward pass over its grid: a few times a second is enough to watch it move.
        self.draw(p, p.run.done || now - (p.drawnAt || 0) > BOUNDARY_MS);
      });
      if (active.length === 0) { self.playing = false; return; }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  };

  Live.prototype.pause = function () { this.playing = false; };

  // ---- what a run that stopped says about the stored Python run of the same cell -------------------------------

  Live.prototype.finish = function (p) {
    var d = this.data, run = p.run, c = p.curve, test = c.test[c.test.length - 1];
    var said = run.done === "fitted" ? "Fitted (zero training error) after " + run.t.toLocaleString("en") + " steps" :
      run.done === "cap" ? "Hit the cap of " + d.cap.toLocaleString("en") + " steps" : "Diverged at step " + run.t;
    if (p.phase === "2") { said += "; test accuracy " + (100 * test).toFixed(1) + "%."; } else { said += "."; }
    var stored = (d.cells[p.cellKey].stored[p.phase] || {})[p.startName];
    if (run.lr !== d.lr || !stored) {
      p.outcome.textContent = said + " No stored run of this cell, start, labels and step size to compare with.";
      return;
    }
    var steps = stored.steps === null ? "hit the cap" : "fitted after " + stored.steps.toLocaleString("en") + " steps";
    var mine = run.done === "fitted" ? run.t : null;
    var agree = agrees(mine, stored.steps, p.phase === "2" ? 100 * test : null, stored.test, d.agree);
    p.outcome.textContent = said + " The stored Python run " + steps +
      (p.phase === "2" ? " with test accuracy " + stored.test.toFixed(1) + "%" : "") + ": " +
      (agree ? "they agree" : "they do not agree") + " (steps within " + 100 * d.agree.steps +
      "% or both at the cap" + (p.phase === "2" ? ", test accuracy within " + d.agree.points + " point" : "") +
      ")." + (agree ? "" : " Expected for long runs: the stored run computed in float32, this page in float64, " +
      "and rounding differences grow along a long run until the two take different paths.");
  };

  function agrees(steps, storedSteps, test, storedTest, tol) {
    var sameSteps = steps === null || storedSteps === null ? steps === storedSteps :
      Math.abs(steps - storedSteps) <= tol.steps * Math.max(steps, storedSteps);
    return sameSteps && (test === null || Math.abs(test - storedTest) <= tol.points);
  }

  // ---- drawing -----------------------------------------------------------------------------------------------

  Live.prototype.draw = function (p, boundary) {
    if (boundary !== false) {
      drawBoundary(p.boundary, p.run.w, p.points, p.phase === "2" ? p.points.y : p.points.yRandom);
      p.drawnAt = performance.now();
    }
    drawCurves(p.curves, p.curve, this.data.cap);
    var c = p.curve, last = c.step.length - 1;
    p.status.textContent = "step " + p.run.t.toLocaleString("en") + "  train " + (100 * c.train[last]).toFixed(1) +
      "%  test " + (p.phase === "2" ? (100 * c.test[last]).toFixed(1) + "%" : "-") + "  loss " +
      c.loss[last].toExponential(3);
  };

  function drawBoundary(canvas, w, pts, y) {
    var ctx = canvas.getContext("2d"), size = canvas.width, v = pts.view;
    var grid = new Float64Array(2 * GRID * GRID), z = new Float64Array(GRID * GRID);
    for (var r = 0; r < GRID; r++) {
      for (var q = 0; q < GRID; q++) {
        grid[2 * (r * GRID + q)] = v.cx - v.half + (q + 0.5) * 2 * v.half / GRID;
        grid[2 * (r * GRID + q) + 1] = v.cy + v.half - (r + 0.5) * 2 * v.half / GRID;
      }
    }
    new Engine(w.length >> 2, 0).forward(w, grid, GRID * GRID, z, false);
    var img = ctx.createImageData(GRID, GRID);
    for (var k = 0; k < GRID * GRID; k++) {
      var prob = 1 / (1 + Math.exp(-z[k])), col = COLORS[prob > 0.5 ? 1 : 0], a = 0.15 + 0.5 * Math.abs(prob - 0.5);
      for (var ch = 0; ch < 3; ch++) { img.data[4 * k + ch] = Math.round(255 * (1 - a) + col[ch] * a); }
      img.data[4 * k + 3] = 255;
    }
    var off = document.createElement("canvas");
    off.width = GRID; off.height = GRID;
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, 0, 0, size, size);
    var at = function (x0, x1) {
      return [(x0 - v.cx + v.half) / (2 * v.half) * size, (v.cy + v.half - x1) / (2 * v.half) * size];
    };
    for (var i = 0; i < pts.yTest.length; i++) {   // test points: small and faint
      var tp = at(pts.xTest[2 * i], pts.xTest[2 * i + 1]), tc = COLORS[pts.yTest[i]];
      ctx.fillStyle = "rgba(" + tc.join(",") + ",0.45)";
      ctx.fillRect(tp[0] - 1, tp[1] - 1, 2, 2);
    }
    ctx.strokeStyle = "#222";
    for (var j = 0; j < y.length; j++) {   // training points, in the colours of the labels being fitted
      var xy = at(pts.x[2 * j], pts.x[2 * j + 1]);
      ctx.fillStyle = "rgb(" + COLORS[y[j]].join(",") + ")";
      ctx.beginPath(); ctx.arc(xy[0], xy[1], 3.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
  }

  function drawCurves(canvas, c, cap) {
    var ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, half = H / 2, pad = 30;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    var last = c.step[c.step.length - 1] || 0, span = Math.max(10, last);
    var xAt = function (s) { return pad + (W - pad - 6) * s / span; };
    var losses = c.loss.filter(function (l) { return l > 0 && isFinite(l); });
    var lo = Math.floor(Math.log10(Math.min.apply(null, losses.concat([0.1]))));
    var hi = Math.ceil(Math.log10(Math.max.apply(null, losses.concat([1]))));
    var line = function (vals, top, height, toY, colour, dash) {
      ctx.strokeStyle = colour; ctx.setLineDash(dash); ctx.beginPath();
      var started = false;
      for (var i = 0; i < vals.length; i++) {
        if (!isFinite(vals[i])) { continue; }
        var px = xAt(c.step[i]), py = top + height * (1 - toY(vals[i]));
        if (started) { ctx.lineTo(px, py); } else { ctx.moveTo(px, py); started = true; }
      }
      ctx.stroke(); ctx.setLineDash([]);
    };
    var acc = function (a) { return a; }, logLoss = function (l) { return (Math.log10(l) - lo) / (hi - lo); };
    line(c.train, 6, half - 16, acc, "#1a5fb4", []);
    line(c.test, 6, half - 16, acc, "#c01c28", [5, 3]);
    line(c.loss, half + 6, half - 22, logLoss, "#333", []);
    ctx.fillStyle = "#333"; ctx.font = "10px sans-serif"; ctx.strokeStyle = "#999";
    ctx.strokeRect(pad, 6, W - pad - 6, half - 16); ctx.strokeRect(pad, half + 6, W - pad - 6, half - 22);
    ctx.fillText("100%", 2, 12); ctx.fillText("0%", 8, half - 10);
    ctx.fillText("1e" + hi.toFixed(0), 2, half + 14); ctx.fillText("1e" + lo.toFixed(0), 2, H - 16);
    ctx.fillText("accuracy: train (solid), test (dashed)", pad + 4, 18);
    ctx.fillText("loss (log scale)", pad + 4, half + 18);
    ctx.fillText("0", pad, H - 4);
    ctx.fillText(span.toLocaleString("en") + " steps (cap " + cap.toLocaleString("en") + ")", W - 170, H - 4);
  }

  // ---- set-up, and what the tests and the benchmark call ------------------------------------------------------

  var instances = [];

  function start() {
    var roots = document.querySelectorAll(".badminima-live[data-source]");
    for (var i = 0; i < roots.length; i++) {
      if (roots[i].getAttribute("data-started")) { continue; }
      roots[i].setAttribute("data-started", "1");
      var source = document.getElementById(roots[i].getAttribute("data-source"));
      instances.push(new Live(roots[i], JSON.parse(source.textContent)));
    }
  }

  // A run of `steps` steps (fewer if it stops) of a cell from a start, on the true labels (phase "2") or the
  // random ones ("1") at the protocol's step: loss and training accuracy at every `every`-th step and the last,
  // the final weights and their accuracy on the true test labels. The page's engine exactly as the buttons run
  // it, without drawing.
  api.trajectory = function (cell, startName, steps, every, phase) {
    var d = instances[0].data, parts = cell.split("/"), pts = instances[0].points(parts[0] + "/" + parts[2]);
    var run = new Run(decode(d.cells[cell].starts[startName]), pts.x, phase === "1" ? pts.yRandom : pts.y, d.lr, steps);
    var out = {step: [], loss: [], train_acc: [], fit_step: null};
    while (true) {
      if (run.t % every === 0 || run.done) {
        var seen = run.measure();
        out.step.push(run.t); out.loss.push(seen.loss); out.train_acc.push(seen.acc);
      }
      if (run.done) { break; }
      run.advance(every - run.t % every);
    }
    if (run.done === "fitted") { out.fit_step = run.t; }
    out.test_acc = accuracyOn(run.w, pts.xTest, pts.yTest);
    if (out.step.length > 1 && out.step[out.step.length - 1] === out.step[out.step.length - 2]) {
      ["step", "loss", "train_acc"].forEach(function (k) { out[k].pop(); });
    }
    out.state = Array.prototype.slice.call(run.w);
    return out;
  };

  // Steps per second of the engine alone on a cell (the benchmark's figure), over at least `seconds`.
  api.speed = function (cell, startName, seconds) {
    var d = instances[0].data, parts = cell.split("/"), pts = instances[0].points(parts[0] + "/" + parts[2]);
    var run = new Run(decode(d.cells[cell].starts[startName]), pts.x, pts.yRandom, d.lr, 1e12);
    var t0 = performance.now(), steps = 0;
    while (performance.now() - t0 < 1000 * seconds) { steps += run.advance(100); if (run.done) { break; } }
    return steps / ((performance.now() - t0) / 1000);
  };

  api.panels = function () {
    return instances[0].panels.map(function (p) {
      return {cell: p.cellKey, start: p.startName, phase: p.phase, step: p.run.t, done: p.run.done,
              outcome: p.outcome.textContent, test: p.curve.test[p.curve.test.length - 1]};
    });
  };

  start();
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
})();
