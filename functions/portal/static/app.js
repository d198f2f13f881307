// The wikiedge portal: a small app speaking only the public API.
//
// Tokens: the access and refresh tokens live in memory and in
// sessionStorage (this tab only, gone when it closes) so a reload keeps the
// login; never in persistent local storage (shared by every tab, kept forever) and
// never in a URL (views are chosen by the fragment, which holds no secret).
// The admin key, if pasted, stays in memory only. See docs/portal.md.
"use strict";

const state = {
  access: sessionStorage.getItem("wikiedge.access"),
  refresh: sessionStorage.getItem("wikiedge.refresh"),
  username: sessionStorage.getItem("wikiedge.username"),
  adminKey: "",
  role: null,
};

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function saveLogin(username, tokens) {
  state.username = username;
  state.access = tokens.access_token;
  if (tokens.refresh_token) state.refresh = tokens.refresh_token;
  sessionStorage.setItem("wikiedge.username", username);
  sessionStorage.setItem("wikiedge.access", state.access);
  if (state.refresh) sessionStorage.setItem("wikiedge.refresh", state.refresh);
  showWho();
}

function clearLogin() {
  state.access = state.refresh = state.username = null;
  ["access", "refresh", "username"].forEach((k) => sessionStorage.removeItem("wikiedge." + k));
  showWho();
}

function showWho() {
  $("who").textContent = state.username ? "Logged in as " + state.username : "Not logged in";
}

// One API call. `auth`: "user" sends the Bearer token, "admin" the admin key
// when one was given (else the Bearer token).
// One request; the response, refreshed once on a 401 with a refresh token.
async function send(method, path, body, auth, accept) {
  const headers = { accept: accept || "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth === "admin" && state.adminKey) headers["x-admin-key"] = state.adminKey;
  else if (auth && state.access) headers.authorization = "Bearer " + state.access;
  let resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  if (resp.status === 401 && auth && state.refresh && !headers["x-admin-key"] && await refresh()) {
    headers.authorization = "Bearer " + state.access;
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit" });
  }
  return resp;
}

// The body (text for CSV, else parsed JSON), or an Error with the server's message.
async function read(resp, accept) {
  if (accept === "text/csv" && resp.ok) return resp.text();
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const retry = resp.headers.get("retry-after");
    throw new Error((data && data.message ? data.message : "HTTP " + resp.status) + (retry ? " (retry in " + retry + " s)" : ""));
  }
  return data;
}

async function api(method, path, body, auth, accept) {
  return read(await send(method, path, body, auth, accept), accept);
}

// Every page of a paged list, following `Link: <...>; rel="next"`: the
// pages' bodies, in order.
async function pages(path, auth, accept) {
  const out = [];
  for (let next = path; next;) {
    const resp = await send("GET", next, undefined, auth, accept);
    out.push(await read(resp, accept));
    const link = /<([^>]*)>;\s*rel="next"/.exec(resp.headers.get("link") || "");
    next = link && link[1].startsWith("/") ? link[1] : null;
  }
  return out;
}

async function refresh() {
  try {
    const tokens = await api("POST", "/v1/token-refresh", { username: state.username, refresh_token: state.refresh });
    saveLogin(state.username, tokens);
    return true;
  } catch (e) {
    clearLogin();
    return false;
  }
}

function formData(form) {
  const out = {};
  new FormData(form).forEach((v, k) => { out[k] = String(v); });
  return out;
}

function onSubmit(id, handler) {
  $(id).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = ev.target.querySelector("button[type=submit]");
    button.disabled = true;
    try { await handler(formData(ev.target), ev.target); }
    catch (e) { say(e.message, true); }
    finally { button.disabled = false; }
  });
}

// ---- proof of work: sha256(identifier || nonce) with `difficulty` zero bits
function zeroBits(bytes) {
  let bits = 0;
  for (const b of bytes) {
    if (b === 0) { bits += 8; continue; }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

async function solve(identifier, difficulty) {
  const enc = new TextEncoder();
  for (let n = 0; ; n += 64) {
    const batch = [];
    for (let i = n; i < n + 64; i++) {
      batch.push(crypto.subtle.digest("SHA-256", enc.encode(identifier + i)).then((d) => [i, new Uint8Array(d)]));
    }
    for (const [i, digest] of await Promise.all(batch)) {
      if (zeroBits(digest) >= difficulty) return String(i);
    }
    if (n % 16384 === 0) say("Solving the sign-up puzzle… " + n + " tries");
  }
}

// ---- views
const loaders = {};

function show(view) {
  const name = $("view-" + view) ? view : (state.access ? "dashboard" : "signup");
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== "view-" + name; });
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  document.title = $("view-" + name).dataset.title + " · wikiedge portal";
  if (loaders[name]) loaders[name]().catch((e) => say(e.message, true));
}

function go(view) {
  if (location.hash === "#" + view) show(view); else location.hash = view;
  $("main").focus();
}

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
  return e;
}

function row(cells) {
  const tr = el("tr");
  cells.forEach((c) => { const td = el("td"); if (c instanceof Node) td.append(c); else td.textContent = String(c); tr.append(td); });
  return tr;
}

const when = (secs) => new Date(secs * 1000).toLocaleString();

// ---- sign-up, confirm, login, reset
onSubmit("signup-form", async (data) => {
  say("Getting a sign-up puzzle…");
  const challenge = await api("GET", "/v1/signup-challenge");
  const nonce = await solve(challenge.identifier, challenge.difficulty);
  await api("POST", "/v1/create-user", {
    username: data.username, email: data.email, password: data.password,
    captcha_id: challenge.identifier, captcha_solution: nonce,
  });
  $("cf-username").value = data.username;
  say("Account created. We emailed you a code: enter it to confirm.");
  go("confirm");
});

onSubmit("confirm-form", async (data) => {
  await api("POST", "/v1/confirm-user", data);
  $("li-username").value = data.username;
  say("Confirmed. You can log in now.");
  go("login");
});

onSubmit("resend-form", async (data) => {
  await api("POST", "/v1/resend-confirm", data);
  say("If that account waits for confirmation, a new code is on its way.");
});

onSubmit("login-form", async (data, form) => {
  const tokens = await api("POST", "/v1/login", data);
  saveLogin(data.username.trim().toLowerCase(), tokens);
  state.role = (await api("POST", "/v1/get-user", undefined, "user")).role;
  form.reset();
  say("Logged in.");
  go("dashboard");
});

onSubmit("forgot-form", async (data) => {
  await api("POST", "/v1/forgot-password", data);
  $("rp-username").value = data.username;
  say("If that account exists, a code is on its way.");
});

onSubmit("reset-form", async (data, form) => {
  await api("POST", "/v1/forgot-password-confirm", data);
  form.reset();
  say("Password changed; every session was logged out. Log in again.");
  go("login");
});

// ---- dashboard
function isoDay(d) { return d.toISOString().slice(0, 10); }

function chart(rows, from, days) {
  const products = [...new Set(rows.map((r) => r.product))].sort();
  const dates = [];
  for (let i = 0; i < days; i++) dates.push(isoDay(new Date(from.getTime() + i * 86400000)));
  const series = products.map((p) => dates.map((d) => rows.filter((r) => r.product === p && r.date === d).reduce((a, r) => a + r.admitted, 0)));
  const max = Math.max(1, ...series.flat());
  const W = 600, H = 200, L = 40, B = 20;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + W + " " + (H + B + 20 * Math.max(1, products.length)));
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const label = "Requests per day per product from " + dates[0] + " to " + dates[dates.length - 1] + "; highest day " + max;
  svg.setAttribute("aria-label", label);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  add("line", { x1: L, y1: H, x2: W, y2: H, class: "axis" });
  add("line", { x1: L, y1: 0, x2: L, y2: H, class: "axis" });
  add("text", { x: 0, y: 10 }, String(max));
  add("text", { x: 0, y: H }, "0");
  add("text", { x: L, y: H + 14 }, dates[0]);
  add("text", { x: W - 60, y: H + 14 }, dates[dates.length - 1]);
  const x = (i) => L + (i * (W - L)) / Math.max(1, days - 1);
  const y = (v) => H - (v * (H - 10)) / max;
  series.forEach((vals, s) => {
    add("polyline", { class: "s" + (s % 5), points: vals.map((v, i) => x(i) + "," + y(v)).join(" ") });
    add("rect", { x: L, y: H + B + 20 * s + 4, width: 10, height: 10, class: "s" + (s % 5) });
    add("text", { x: L + 16, y: H + B + 20 * s + 13 }, products[s] + " (" + vals.reduce((a, b) => a + b, 0) + ")");
  });
  return { svg, label };
}

loaders.dashboard = async () => {
  if (!state.access) { say("Log in to see your dashboard."); return; }
  const [user, quota] = await Promise.all([api("POST", "/v1/get-user", undefined, "user"), api("GET", "/v1/quota", undefined, "user")]);
  state.role = user.role;
  const dl = $("account");
  dl.replaceChildren();
  [["Username", user.username], ["Plan", quota.plan], ["Role", user.role], ["Month", quota.month], ["Burst limit", quota.burst_per_second + " requests/s"]].forEach(([k, v]) => {
    dl.append(el("dt", k), el("dd", v));
  });
  const body = $("quota-table").querySelector("tbody");
  body.replaceChildren(...quota.products.map((p) => row([p.product, p.limit, p.used, p.remaining, when(Date.now() / 1000 + p.reset)])));
  const grants = $("grants");
  grants.replaceChildren(...(quota.grants.length ? quota.grants.map((g) => el("li",
    Object.entries(g.monthly || {}).map(([k, v]) => k + ": " + v + "/month").join(", ") +
    (g.burst_per_second ? ", burst " + g.burst_per_second + "/s" : "") + " until " + when(g.expires) + (g.reason ? " (" + g.reason + ")" : ""),
    { "data-expires": g.expires })) : [el("li", "None")]));
  const to = new Date(); const from = new Date(to.getTime() - 29 * 86400000);
  const usage = await api("GET", "/v1/usage?from=" + isoDay(from) + "&to=" + isoDay(to), undefined, "user");
  const { svg, label } = chart(usage.usage || [], from, 30);
  $("usage-chart").replaceChildren(svg);
  const denied = (usage.usage || []).reduce((a, r) => a + r.denied, 0);
  $("usage-caption").textContent = label + ". Requests denied in these 30 days: " + denied + ".";
};

$("logout").addEventListener("click", async () => {
  try { if (state.refresh) await api("POST", "/v1/token-revoke", { refresh_token: state.refresh }); }
  catch (e) { say(e.message, true); }
  clearLogin();
  say("Logged out; the session is revoked.");
  go("login");
});

// ---- exceptional access
loaders.access = async () => {
  if (!state.access) { say("Log in to ask for exceptional access."); return; }
  const list = await api("GET", "/v1/access-requests", undefined, "user");
  const items = Array.isArray(list) ? list : (list.requests || []);
  $("my-requests").replaceChildren(...(items.length ? items.map((r) => {
    let text = r.id + ": " + r.status + " (sent " + when(r.created) + ")";
    const d = r.decision && r.decision.decision;
    if (d && d.action === "approve") text += "; granted until " + when(d.expires);
    if (d && d.action === "decline") text += "; reason: " + d.reason;
    return el("li", text, { "data-status": r.status });
  }) : [el("li", "No requests yet")]));
};

onSubmit("access-form", async (data, form) => {
  await api("POST", "/v1/access-requests", data, "user");
  form.reset();
  say("Request sent; an administrator will review it.");
  await loaders.access();
});

// ---- data: snapshots and the realtime stream
// Downloads need the token in a header, so they are fetched and offered as
// local blob: files (a link would have to carry the token in its URL).
async function download(path, name) {
  const headers = { authorization: "Bearer " + state.access };
  const resp = await fetch(path, { headers, credentials: "omit" });
  if (!resp.ok) throw new Error("Download failed: HTTP " + resp.status);
  const a = el("a", null, { href: URL.createObjectURL(await resp.blob()), download: name });
  document.body.append(a); a.click(); a.remove();
}

loaders.data = async () => {
  if (!state.access) { say("Log in to see the data."); return; }
  const list = await api("GET", "/v2/snapshots", undefined, "user");
  const body = $("snapshots-table").querySelector("tbody");
  body.replaceChildren(...(list || []).map((snap) => {
    const b = el("button", "Download", { type: "button", "aria-label": "Download " + snap.identifier });
    b.addEventListener("click", () => {
      say("Downloading " + snap.identifier + "…");
      download("/v2/snapshots/" + encodeURIComponent(snap.identifier) + "/download", snap.identifier + ".tar.gz")
        .then(() => say("Downloaded " + snap.identifier)).catch((e) => say(e.message, true));
    });
    const size = snap.size ? snap.size.value + " " + (snap.size.unit_text || "") : "";
    return row([snap.identifier, snap.date_modified || "", size, b]);
  }));
};

let stream = null;
onSubmit("stream-form", async (data) => {
  if (stream) stream.abort();
  stream = new AbortController();
  const filters = [];
  if (data.project.trim()) filters.push({ field: "is_part_of.identifier", value: data.project.trim() });
  if (data.event.trim()) filters.push({ field: "event.type", value: data.event.trim() });
  const resp = await fetch("/realtime/v2/articles", {
    method: "POST", signal: stream.signal, credentials: "omit",
    headers: { authorization: "Bearer " + state.access, accept: "application/x-ndjson", "content-type": "application/json" },
    body: JSON.stringify(filters.length ? { filters } : {}),
  });
  if (!resp.ok) { const e = await resp.json().catch(() => ({})); throw new Error(e.message || "HTTP " + resp.status); }
  say("Listening to the realtime stream…");
  const list = $("stream-events");
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const lines = buffer.split("\n");
        buffer = lines.pop();
        lines.filter((l) => l.trim()).forEach((line) => {
          const ev = JSON.parse(line);
          const text = (ev.event && ev.event.type ? ev.event.type + " " : "") + (ev.is_part_of ? ev.is_part_of.identifier + ": " : "") + (ev.name || "");
          list.prepend(el("li", text));
          while (list.children.length > 50) list.lastChild.remove();
        });
      }
      say("The stream ended; start it again to resume.");
    } catch (e) { if (e.name !== "AbortError") say(e.message, true); }
  })();
});
$("stream-stop").addEventListener("click", () => { if (stream) stream.abort(); stream = null; say("Stopped."); });

// ---- admin
$("admin-key").addEventListener("change", (ev) => { state.adminKey = ev.target.value; say(state.adminKey ? "Using the admin key." : ""); loaders.admin().catch((e) => say(e.message, true)); });
let accounts = [];

function renderAccounts() {
  const q = $("account-search").value.trim().toLowerCase();
  const body = $("accounts-table").querySelector("tbody");
  body.replaceChildren(...accounts.filter((a) => a.username.includes(q) || a.plan.includes(q)).map((a) => {
    const b = el("button", a.disabled ? "Enable" : "Disable", { type: "button" });
    b.addEventListener("click", async () => {
      try {
        await api("PATCH", "/v1/admin/accounts/" + encodeURIComponent(a.username), { disabled: !a.disabled }, "admin");
        say((a.disabled ? "Enabled " : "Disabled ") + a.username);
        await loaders.admin();
      } catch (e) { say(e.message, true); }
    });
    const plan = el("input", null, { value: a.plan, "aria-label": "Plan of " + a.username, size: "10" });
    const set = el("button", "Set plan", { type: "button" });
    set.addEventListener("click", async () => {
      try {
        await api("PATCH", "/v1/admin/accounts/" + encodeURIComponent(a.username), { plan: plan.value.trim() }, "admin");
        say("Plan of " + a.username + " is now " + plan.value.trim());
        await loaders.admin();
      } catch (e) { say(e.message, true); }
    });
    const actions = el("span");
    actions.append(b, " ", plan, " ", set);
    const st = a.disabled ? "disabled" : (a.unconfirmed ? "unconfirmed" : "active");
    return row([a.username, a.plan, a.role, st, actions]);
  }));
}
$("account-search").addEventListener("input", renderAccounts);

function reviewCard(r) {
  const li = el("li", null, { class: "card", "data-request": r.id });
  li.append(el("h4", r.account + " — " + r.id));
  const dl = el("dl");
  ["who", "purpose", "need", "obligation", "mission_alignment", "values_alignment"].forEach((k) => {
    if (r[k]) dl.append(el("dt", k.replace(/_/g, " ")), el("dd", r[k]));
  });
  li.append(dl);
  const form = el("form", null, { "aria-label": "Decide on " + r.id });
  const id = (s) => "rv-" + r.id + "-" + s;
  const field = (name, label, attrs) => { form.append(el("label", label, { for: id(name) }), el("input", null, Object.assign({ id: id(name), name }, attrs))); };
  field("ondemand", "On-demand requests per month", { type: "number", min: "0", value: "50000" });
  field("snapshot", "Snapshot downloads per month", { type: "number", min: "0", value: "0" });
  field("burst", "Burst per second (optional)", { type: "number", min: "1" });
  field("days", "Expires after days", { type: "number", min: "1", value: "90" });
  field("reason", "Reason (for a rejection)", { type: "text" });
  const approve = el("button", "Approve", { type: "submit", value: "approve" });
  const reject = el("button", "Reject", { type: "submit", value: "decline" });
  form.append(approve, reject);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = formData(form);
    const action = ev.submitter ? ev.submitter.value : "approve";
    let decision;
    if (action === "approve") {
      const monthly = {};
      if (+f.ondemand > 0) monthly.ondemand = +f.ondemand;
      if (+f.snapshot > 0) monthly.snapshot = +f.snapshot;
      decision = { action: "approve", monthly, expires: Math.floor(Date.now() / 1000) + 86400 * (+f.days || 90) };
      if (+f.burst > 0) decision.burst_per_second = +f.burst;
    } else {
      if (!f.reason.trim()) { say("A rejection needs a reason.", true); return; }
      decision = { action: "decline", reason: f.reason };
    }
    try {
      await api("POST", "/v1/admin/access-requests/" + encodeURIComponent(r.id) + "/decision", decision, "admin");
      say((action === "approve" ? "Approved " : "Rejected ") + r.id);
      await loaders.admin();
    } catch (e) { say(e.message, true); }
  });
  li.append(form);
  return li;
}

loaders.admin = async () => {
  if (!state.adminKey && !(state.access && state.role === "admin")) { say("Log in as an admin, or paste the admin key."); return; }
  const queue = await api("GET", "/v1/admin/access-requests?status=pending", undefined, "admin");
  const items = Array.isArray(queue) ? queue : (queue.requests || []);
  $("review-queue").replaceChildren(...(items.length ? items.map(reviewCard) : [el("li", "Nothing to review")]));
  accounts = (await pages("/v1/admin/accounts?limit=200", "admin")).flat();
  renderAccounts();
};

function month() { return $("usage-month").value.trim() || new Date().toISOString().slice(0, 7); }

onSubmit("usage-month-form", async () => {
  const rows = (await pages("/v1/admin/usage?limit=200&month=" + encodeURIComponent(month()), "admin")).flat();
  $("admin-usage").querySelector("tbody").replaceChildren(...rows.map((r) => row([r.account, r.product, r.admitted, r.denied, r.bytes])));
});

// The CSV needs the token, so it is fetched and offered as a local file
// (a plain link would have to carry the token in its URL).
$("usage-csv").addEventListener("click", async () => {
  try {
    // Each page is a CSV with its own header line; the file keeps the first.
    const csv = (await pages("/v1/admin/usage?limit=200&month=" + encodeURIComponent(month()), "admin", "text/csv"))
      .map((page, i) => (i === 0 ? page : page.slice(page.indexOf("\n") + 1))).join("");
    const a = el("a", null, { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "usage-" + month() + ".csv" });
    document.body.append(a); a.click(); a.remove();
  } catch (e) { say(e.message, true); }
});

// ---- API reference, rendered from the OpenAPI document
loaders.reference = async () => {
  const doc = await api("GET", "/openapi.json");
  const out = $("reference");
  out.replaceChildren();
  Object.entries(doc.paths).forEach(([path, ops]) => {
    const section = el("section", null, { class: "card" });
    section.append(el("h3", path, { class: "reference-path" }));
    Object.entries(ops).forEach(([method, op]) => {
      if (typeof op !== "object" || !op.summary) return;
      section.append(el("p", method.toUpperCase() + " — " + op.summary));
      if (op.description) section.append(el("p", op.description, { class: "hint" }));
    });
    out.append(section);
  });
};

window.addEventListener("hashchange", () => show(location.hash.slice(1)));
showWho();
show(location.hash.slice(1));
