// The review page. Every text from the run is put on the page with textContent (never as HTML).
"use strict";

const S = { state: null, list: [], pos: -1, row: null, mode: "view" };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function say(text, ok) {
  $("message").textContent = text || "";
  $("message").className = ok ? "ok" : "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data = {};
  try { data = await response.json(); } catch (err) { data = { error: "the server sent no JSON" }; }
  return { status: response.status, data };
}

function fillSelect(id, values) {
  const select = $(id);
  const keep = select.value;
  while (select.options.length > 1) select.remove(1);
  for (const value of values) select.add(new Option(value, value));
  select.value = values.includes(keep) ? keep : "";
  select.closest("label").hidden = values.length === 0;
}

function uniq(values) { return [...new Set(values.filter((v) => v))].sort(); }

async function loadState() {
  const { status, data } = await api("/api/state");
  if (status !== 200) { say(data.error || "could not load the review"); return false; }
  S.state = data;
  $("run").textContent = data.run;
  const rows = data.rows;
  fillSelect("f-skill", uniq(rows.map((r) => r.skill)));
  fillSelect("f-reason", uniq(rows.flatMap((r) => r.reasons)));
  fillSelect("f-op", uniq(rows.map((r) => r.operation)));
  $("f-kind").closest("label").hidden = !rows.some((r) => r.kind === "rejected");
  if (!$("reviewer").value) $("reviewer").value = localStorage.getItem("hf-synth-reviewer") || data.reviewer || "";
  showProgress(data.progress);
  return true;
}

// Skills are labelled in the background on big runs: poll the light progress endpoint until they are
// all there, then reload the row list once (it fills the skill filter).
let skillsPoll = null;
function watchSkills(p) {
  if (p.skills_pending > 0 && skillsPoll === null) {
    skillsPoll = setInterval(async () => {
      const { status, data } = await api("/api/progress");
      if (status !== 200) return;
      showProgress(data);
      if (data.skills_pending === 0) { clearInterval(skillsPoll); skillsPoll = null; await reloadRows(); }
    }, 3000);
  }
}

async function reloadRows() {
  const key = S.row ? S.row.key : null;
  if (!(await loadState())) return;
  applyFilters();
  const at = S.list.findIndex((r) => r.key === key);
  if (at >= 0) S.pos = at;
}

function showProgress(p) {
  const rate = p.acceptance_rate === null ? "–" : `${Math.round(p.acceptance_rate * 1000) / 10}%`;
  $("progress-text").textContent =
    `${p.reviewed} / ${p.total} reviewed · accepted ${p.accepted}, edited ${p.edited}, rejected ${p.rejected} · acceptance ${rate}`
    + (p.filtered_judged ? ` · ${p.filtered_judged} filter-dropped rows judged` : "");
  $("progress-bar").max = p.total;
  $("progress-bar").value = p.reviewed;
  if (p.skills_pending > 0) $("progress-text").textContent += ` · labelling skills: ${p.skills_pending} rows left`;
  watchSkills(p);
}

function applyFilters() {
  const f = { status: $("f-status").value, kind: $("f-kind").value, skill: $("f-skill").value,
    reason: $("f-reason").value, op: $("f-op").value };
  S.list = S.state.rows.filter((r) => (!f.status || r.status === f.status) && (!f.kind || r.kind === f.kind)
    && (!f.skill || r.skill === f.skill) && (!f.reason || r.reasons.includes(f.reason))
    && (!f.op || r.operation === f.op));
  $("view-count").textContent = `${S.list.length} rows in this view`;
}

function entry(key) { return S.state.rows.find((r) => r.key === key); }

async function show(pos) {
  if (S.list.length === 0) { $("row").hidden = true; $("empty").hidden = false; S.pos = -1; S.row = null; return; }
  S.pos = Math.max(0, Math.min(pos, S.list.length - 1));
  const key = S.list[S.pos].key;
  const { status, data } = await api(`/api/row?key=${encodeURIComponent(key)}`);
  if (status !== 200) { say(data.error); return; }
  S.row = data;
  S.mode = "view";
  history.replaceState(null, "", `#${encodeURIComponent(key)}`);
  render();
}

function render() {
  const r = S.row;
  $("empty").hidden = true;
  $("row").hidden = false;
  $("reject-panel").hidden = true;
  $("edit-panel").hidden = true;
  $("actions").hidden = false;
  $("position").textContent = `Row ${S.pos + 1} of ${S.list.length} in this view` + (r.id ? ` · id ${r.id}` : "");
  const status = r.decision ? r.decision.decision : "unreviewed";
  $("status").textContent = status;
  $("status").className = `badge ${status}`;
  $("kind").textContent = r.kind === "rejected" ? "dropped by the run's filters" : "kept by the run";
  const meta = Object.entries(r.meta).map(([k, v]) => `${k}: ${v}`);
  if (r.skill && !r.meta.skill) meta.push(`skill: ${r.skill}`);
  $("meta").textContent = meta.join(" · ");
  $("reasons").hidden = r.reasons.length === 0;
  $("reasons").textContent = `Dropped because: ${r.reasons.join(", ")}`;
  $("edit").disabled = r.kind === "rejected";
  const fields = $("fields");
  fields.replaceChildren();
  for (const [name, text] of Object.entries(r.fields)) {
    const box = el("div", undefined, "field");
    box.append(el("h2", name));
    const shown = el("div", text === "" ? "(empty)" : text, "text");
    shown.dataset.field = name;
    box.append(shown);
    fields.append(box);
  }
  const d = r.decision;
  $("decision").textContent = d
    ? `Decided ${d.decision}${d.reason ? ` (${d.reason})` : ""}${d.reviewer ? ` by ${d.reviewer}` : ""} at ${d.time}`
      + (d.edits && Object.keys(d.edits).length ? `; edited: ${Object.keys(d.edits).join(", ")}` : "")
    : "";
  if (d && d.edits) {
    for (const [name, text] of Object.entries(d.edits)) {
      const shown = fields.querySelector(`[data-field="${name}"]`);
      if (shown) { shown.textContent = text; shown.previousSibling.textContent = `${name} (edited)`; }
    }
  }
  const scores = $("scores");
  scores.replaceChildren();
  for (const [name, value] of Object.entries(r.scores)) {
    const tr = el("tr");
    tr.append(el("td", name), el("td", typeof value === "object" ? JSON.stringify(value) : value));
    scores.append(tr);
  }
  $("scores-box").hidden = Object.keys(r.scores).length === 0;
  const lineage = $("lineage");
  lineage.replaceChildren();
  for (const a of r.lineage) {
    const li = el("li");
    li.append(el("strong", `${a.role}${a.operation ? ` (${a.operation}, round ${a.round})` : ""}: `), el("span", a.instruction));
    lineage.append(li);
  }
  $("lineage-box").hidden = r.lineage.length === 0;
}

function nextUnreviewed(from) {
  for (let i = from + 1; i < S.list.length; i++) if (S.list[i].status === "unreviewed") return i;
  for (let i = 0; i <= from && i < S.list.length; i++) if (S.list[i].status === "unreviewed") return i;
  return -1;
}

async function decide(decision, extra) {
  if (!S.row || S.busy) return;
  S.busy = true;
  document.body.dataset.busy = "1";
  const reviewer = $("reviewer").value.trim();
  localStorage.setItem("hf-synth-reviewer", reviewer);
  const body = Object.assign({ key: S.row.key, text_hash: S.row.text_hash, decision, reviewer,
    base: S.row.decision ? S.row.decision.uid : null }, extra || {});
  try {
    const { status, data } = await api("/api/decide", body);
    if (status === 200) {
      entry(S.row.key).status = decision;
      const next = nextUnreviewed(S.pos);
      if (next >= 0) { await show(next); say(`Saved: ${decision}.`, true); }
      else { S.row.decision = data.decision; render(); say("Saved. Every row in this view is reviewed.", true); }
      showProgress(data.progress);
    } else {
      say(data.error || `the server answered ${status}`);
      if (status === 409) { await loadState(); applyFilters(); await show(S.list.findIndex((r) => r.key === S.row.key)); say(data.error); }
    }
  } finally { S.busy = false; delete document.body.dataset.busy; }
}

function startReject() {
  if (!S.row) return;
  if (S.row.kind === "rejected") { decide("rejected", { reason: "agrees_with_filter" }); return; }
  S.mode = "reject";
  $("actions").hidden = true;
  $("reject-panel").hidden = false;
  const box = $("reject-reasons");
  box.replaceChildren();
  S.state.reject_reasons.forEach((reason, i) => {
    const label = el("label");
    const input = el("input");
    input.type = "radio"; input.name = "reason"; input.value = reason; input.checked = i === 0;
    label.append(input, el("span", ` ${i + 1}. ${reason.replace(/_/g, " ")}`));
    box.append(label);
  });
  $("reject-other").value = "";
}

function confirmReject() {
  const other = $("reject-other").value.trim();
  const picked = document.querySelector("input[name=reason]:checked");
  const reason = other || (picked ? picked.value : "");
  if (!reason) { say("Pick a reason or type one."); return; }
  decide("rejected", { reason });
}

function startEdit() {
  if (!S.row || S.row.kind === "rejected") return;
  S.mode = "edit";
  $("actions").hidden = true;
  $("edit-panel").hidden = false;
  for (const shown of document.querySelectorAll("#fields .text")) {
    const area = el("textarea");
    area.dataset.field = shown.dataset.field;
    const edits = S.row.decision && S.row.decision.edits ? S.row.decision.edits : {};
    area.value = edits[shown.dataset.field] ?? S.row.fields[shown.dataset.field];
    shown.replaceWith(area);
  }
  const first = document.querySelector("#fields textarea[data-field=output]") || document.querySelector("#fields textarea");
  if (first) first.focus();
}

function saveEdit() {
  const edits = {};
  for (const area of document.querySelectorAll("#fields textarea")) edits[area.dataset.field] = area.value;
  decide("edited", { edits });
}

function cancel() { S.mode = "view"; render(); say(""); }

function typing(event) {
  const t = event.target;
  return t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "radio") || t.tagName === "SELECT");
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.metaKey) return;
  if (S.busy) { event.preventDefault(); return; }
  if (S.mode === "edit") {
    if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); saveEdit(); }
    else if (event.key === "Escape") { event.preventDefault(); cancel(); }
    return;
  }
  if (S.mode === "reject") {
    if (event.key === "Enter") { event.preventDefault(); confirmReject(); }
    else if (event.key === "Escape") { event.preventDefault(); cancel(); }
    else if (!typing(event) && /^[1-9]$/.test(event.key)) {
      const radios = document.querySelectorAll("input[name=reason]");
      const radio = radios[Number(event.key) - 1];
      if (radio) { event.preventDefault(); radio.checked = true; }
    }
    return;
  }
  if (typing(event) || event.ctrlKey) return;
  const actions = {
    a: () => decide("accepted"), r: startReject, e: startEdit,
    n: () => show(S.pos + 1), j: () => show(S.pos + 1), ArrowRight: () => show(S.pos + 1),
    p: () => show(S.pos - 1), k: () => show(S.pos - 1), ArrowLeft: () => show(S.pos - 1),
    u: () => { const i = nextUnreviewed(S.pos); if (i >= 0) show(i); else say("No unreviewed row in this view.", true); },
  };
  if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
});

async function refilter() {
  const key = S.row ? S.row.key : null;
  applyFilters();
  const at = S.list.findIndex((r) => r.key === key);
  await show(at >= 0 ? at : Math.max(0, nextUnreviewed(-1)));
}

async function start() {
  $("accept").addEventListener("click", () => decide("accepted"));
  $("reject").addEventListener("click", startReject);
  $("edit").addEventListener("click", startEdit);
  $("next").addEventListener("click", () => show(S.pos + 1));
  $("prev").addEventListener("click", () => show(S.pos - 1));
  $("reject-confirm").addEventListener("click", confirmReject);
  $("reject-cancel").addEventListener("click", cancel);
  $("edit-save").addEventListener("click", saveEdit);
  $("edit-cancel").addEventListener("click", cancel);
  for (const id of ["f-status", "f-kind", "f-skill", "f-reason", "f-op"]) $(id).addEventListener("change", refilter);
  // Other tabs may have decided rows: pick their decisions up when this tab comes back.
  document.addEventListener("visibilitychange", async () => {
    if (document.visibilityState !== "visible" || S.mode !== "view") return;
    await reloadRows();
    if (S.row) await show(S.pos);
  });
  if (!(await loadState())) return;
  applyFilters();
  const wanted = decodeURIComponent(location.hash.slice(1));
  const at = S.list.findIndex((r) => r.key === wanted);
  await show(at >= 0 ? at : Math.max(0, nextUnreviewed(-1)));
  document.body.dataset.ready = "1";
}

start();
