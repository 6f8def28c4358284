// The costroute playground: posts to this server's Images API and shows every candidate.
// No framework, no build step, nothing from another origin (the page's Content-Security-Policy
// allows this origin only). Everything the server returns is written with textContent.
"use strict";

(function () {
  const ENDPOINT = "v1/images/generations"; // relative: works when the app is mounted under a prefix
  const SLIDER_MAX = 1000;
  const LOG_LOW = -3; // slider position 1 is λ = 10^-3 ...
  const LOG_HIGH = 3; // ... and the last one λ = 10^3; position 0 is λ = 0

  const $ = (id) => document.getElementById(id);

  function sliderToPenalty(position) {
    if (position <= 0) return 0;
    return Math.pow(10, LOG_LOW + ((LOG_HIGH - LOG_LOW) * (position - 1)) / (SLIDER_MAX - 1));
  }

  function penaltyToSlider(penalty) {
    if (!(penalty > 0)) return 0;
    const log = Math.min(LOG_HIGH, Math.max(LOG_LOW, Math.log10(penalty)));
    return Math.round(1 + ((log - LOG_LOW) / (LOG_HIGH - LOG_LOW)) * (SLIDER_MAX - 1));
  }

  // Numbers as shown: 4 significant digits, exponent form for very large or small values.
  function fmt(x) {
    if (x === null || x === undefined) return "–";
    if (typeof x !== "number" || !isFinite(x)) return String(x);
    const a = Math.abs(x);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return x.toExponential(3);
    return x.toFixed(Math.max(0, 3 - Math.floor(Math.log10(a || 1))));
  }

  function element(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  function showError(status, error) {
    const box = $("error");
    box.replaceChildren();
    box.appendChild(element("strong", status ? `Error ${status}` : "Error"));
    box.appendChild(element("span", ": " + (error.message || "unknown error"), "error-message"));
    const details = ["type", "code", "param"]
      .filter((k) => error[k])
      .map((k) => `${k}: ${error[k]}`)
      .join(" · ");
    if (details) box.appendChild(element("div", details, "error-details"));
    box.hidden = false;
    $("result").hidden = true; // an earlier answer must not pass for this request's
    $("placeholder").hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").replaceChildren();
  }

  // With "the server's λ" checked the slider and the number are dimmed (not sent); moving either unchecks it.
  function showPenaltySource() {
    const server = $("server-penalty").checked;
    for (const id of ["penalty-slider", "penalty"]) $(id).classList.toggle("dim", server);
  }

  function syncPenaltyFromSlider() {
    $("penalty").value = Number(sliderToPenalty(Number($("penalty-slider").value)).toPrecision(4));
    $("server-penalty").checked = false;
    showPenaltySource();
  }

  function syncSliderFromPenalty() {
    $("penalty-slider").value = penaltyToSlider(Number($("penalty").value));
    $("server-penalty").checked = false;
    showPenaltySource();
  }

  function requestBody() {
    const extension = { candidates: true };
    const seed = $("seed").value.trim();
    if (seed !== "") extension.seed = Number(seed);
    if (!$("server-penalty").checked) extension.cost_penalty = Number($("penalty").value);
    return {
      model: "auto",
      prompt: $("prompt").value,
      n: 1,
      response_format: "b64_json",
      costroute: extension,
    };
  }

  function addTerm(list, term, value) {
    list.appendChild(element("dt", term));
    list.appendChild(element("dd", value));
  }

  function scoresText(scores) {
    const names = Object.keys(scores || {});
    if (!names.length) return "not scored";
    return names.map((name) => `${name}: ${fmt(scores[name])}`).join("\n");
  }

  function render(body) {
    const datum = body.data[0];
    const ext = datum.costroute;
    const top = body.costroute || {};
    $("returned-image").src = "data:image/png;base64," + datum.b64_json;
    $("returned-caption").textContent = `returned by ${ext.generator}`;

    const summary = $("summary");
    summary.replaceChildren();
    addTerm(summary, "generator", ext.generator);
    addTerm(summary, "generators tried", ext.generators_tried.join(" → "));
    addTerm(summary, "cost", `${fmt(ext.cost)} ${ext.cost_unit} (normalised ${fmt(ext.normalized_cost)})`);
    addTerm(summary, "predicted quality", fmt(ext.predicted_quality));
    addTerm(summary, "λ used", fmt(ext.cost_penalty));
    addTerm(summary, "seed", String(top.seed));
    addTerm(summary, "router", top.cascade ? "cascade (scores, may escalate)" : "router (one image)");
    if (top.budget !== null && top.budget !== undefined) addTerm(summary, "server budget", fmt(top.budget));
    if (ext.budget_guard) addTerm(summary, "budget guard", "sent to the cheapest generator");
    if (ext.explored) addTerm(summary, "explored", "sent to a random generator");
    for (const f of ext.fallbacks || []) {
      addTerm(summary, "fallback", `${f.generator} failed (${f.error})` + (f.to ? ` → ${f.to}` : ""));
    }
    for (const w of ext.warnings || []) addTerm(summary, "warning", w);

    const rows = $("candidates").querySelector("tbody");
    rows.replaceChildren();
    for (const c of ext.candidates || []) {
      const tr = element("tr", null, "candidate" + (c.returned ? " returned" : ""));
      tr.dataset.generator = c.generator;
      const image = element("td", null, "image");
      const img = element("img");
      img.src = "data:image/png;base64," + c.b64_json;
      img.alt = `image by ${c.generator}`;
      image.appendChild(img);
      tr.appendChild(image);
      const name = element("td", null, "generator");
      name.appendChild(element("span", c.generator, "name"));
      if (c.returned) name.appendChild(element("span", "returned", "badge"));
      tr.appendChild(name);
      tr.appendChild(element("td", scoresText(c.scores), "scores"));
      tr.appendChild(element("td", `${fmt(c.cost)} ${c.cost_unit}`, "cost"));
      tr.appendChild(element("td", fmt(c.normalized_cost), "normalized-cost"));
      tr.appendChild(element("td", fmt(c.seconds), "seconds"));
      rows.appendChild(tr);
    }
    $("placeholder").hidden = true;
    $("result").hidden = false;
  }

  async function generate(event) {
    event.preventDefault();
    clearError();
    const button = $("generate");
    const status = $("status");
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const key = $("api-key").value.trim();
    if (key) headers.Authorization = "Bearer " + key;
    button.disabled = true;
    status.textContent = "generating…";
    const started = performance.now();
    try {
      const response = await fetch(ENDPOINT, {
        method: "POST",
        headers: headers,
        body: JSON.stringify(requestBody()),
        credentials: "omit",
        cache: "no-store",
      });
      let body = null;
      try {
        body = await response.json();
      } catch (err) {
        body = null;
      }
      if (!response.ok || !body || !body.data) {
        const error = body && body.error ? body.error : { message: `the server answered ${response.status} without an error body` };
        showError(response.status, error);
        status.textContent = "failed";
        return;
      }
      render(body);
      status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(2)} s`;
    } catch (err) {
      showError(null, { message: `could not reach the server: ${err.message || err}` });
      status.textContent = "failed";
    } finally {
      button.disabled = false;
    }
  }

  function start() {
    $("penalty-slider").addEventListener("input", syncPenaltyFromSlider);
    $("penalty").addEventListener("input", syncSliderFromPenalty);
    $("server-penalty").addEventListener("change", showPenaltySource);
    showPenaltySource();
    $("form").addEventListener("submit", generate);
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("form").requestSubmit();
    });
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
