// ocptask console: a few behaviours over server-rendered pages. Everything that changes
// something calls OCP's API with the page's session and its CSRF token. Text from records is
// only ever set as textContent, never as HTML.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrf(), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let envelope = null;
  try { envelope = await answer.json(); } catch (e) { /* not JSON: said below */ }
  if (answer.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname); }
  if (!envelope || !envelope.successful) {
    const error = (envelope && envelope.error) || {};
    const problem = new Error(error.message || `HTTP ${answer.status}`);
    problem.subErrors = error.subErrors || [];
    throw problem;
  }
  return envelope.data;
}

// Background reads of a page (its rows, its task's state): marked, so that an ended session
// answers 401 instead of the login page; the page then says so and stops reading.
async function poll(path) {
  const answer = await fetch(path, { credentials: "same-origin", headers: { "X-Ocptask-Poll": "1" } });
  if (answer.status === 401) {
    const say = document.getElementById("message") || document.getElementById("refreshed");
    if (say) {
      say.replaceChildren("Your session has ended: ");
      const link = document.createElement("a");
      link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      link.textContent = "log in again";
      say.append(link);
    }
    return null;
  }
  return answer.ok ? answer : undefined;
}

// Runs ``step`` again ``every()`` ms after it finished (never two at once); stops when it
// returns null (the session ended).
function repeat(step, every) {
  const again = async () => {
    let result;
    try { result = await step(); } catch (e) { result = undefined; }
    if (result !== null) setTimeout(again, every());
  };
  setTimeout(again, every());
}

function showErrors(box, problem) {
  box.replaceChildren();
  const head = document.createElement("p");
  head.textContent = problem.message;
  box.append(head);
  if (problem.subErrors.length) {
    const list = document.createElement("ul");
    for (const sub of problem.subErrors) {
      const item = document.createElement("li");
      item.textContent = `${sub.field}: ${sub.message}`;
      list.append(item);
    }
    box.append(list);
  }
  box.hidden = false;
  box.focus();
}

// -- the task list refreshes its rows -------------------------------------------------------
function tasksPage() {
  const body = document.getElementById("task-rows");
  const said = document.getElementById("refreshed");
  const auto = document.getElementById("auto-refresh");
  repeat(async () => {
    // Not while off, hidden, or while the keyboard is in the table (its rows would vanish).
    if (!auto.checked || document.hidden || body.contains(document.activeElement)) return true;
    const answer = await poll(body.dataset.refresh);
    if (!answer) return answer;
    body.innerHTML = await answer.text();  // the server's own escaped rendering of the rows
    said.textContent = "updated " + new Date().toLocaleTimeString();
    return true;
  }, () => 3000);
}

// -- one task: its DAG recoloured live, a node's details and log ------------------------------
const COLOURS = {
  PENDING: "#e6e6e6", READY: "#fff2a8", RUNNING: "#9fd3ff",
  CANCELING: "#ffc98a", SUCCESSFUL: "#a6e3a1", FAILED: "#f4a0a0",
};
const ACTIVE = ["READY", "RUNNING", "CANCELING"];

function taskPage() {
  let state = JSON.parse(document.getElementById("task-state").textContent);
  let selected = null;
  let logTimer = null;
  const byId = (id) => document.getElementById(id);
  const message = byId("message");
  const nodes = new Map();
  for (const node of document.querySelectorAll("#dag g.node")) {
    const id = Number(node.id.slice(1));
    nodes.set(id, node);
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    node.addEventListener("click", () => select(id));
    node.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(id); }
    });
  }

  const title = document.querySelector("#dag svg g.graph > text");

  function draw() {
    if (title) title.textContent = `task ${state.id}: ${state.name} (${state.status})`;
    byId("task-status").textContent = state.status;
    byId("task-status").className = "status " + state.status;
    byId("task-operation").textContent = state.operation;
    byId("task-progress").textContent = `${state.done}/${state.total}`;
    byId("task-retry").hidden = !state.actions.retry;
    byId("task-rollback").hidden = !state.actions.rollback;
    for (const sub of state.subtasks) {
      const node = nodes.get(sub.id);
      if (!node) continue;
      node.dataset.status = sub.status;
      node.setAttribute("aria-label", `${sub.name}, ${sub.status}${sub.host ? ", " + sub.host : ""}`);
      const shape = node.querySelector("path, polygon");
      if (shape) shape.setAttribute("fill", COLOURS[sub.status] || "#ffffff");
      const texts = node.querySelectorAll("text");
      if (texts.length) texts[texts.length - 1].textContent = `#${sub.id} ${sub.status}`;
    }
    // A host's chain (a Graphviz cluster "cluster_<parallelIdx>") is outlined red once a step
    // of it failed, and says so to assistive technology.
    for (const cluster of document.querySelectorAll("#dag g.cluster")) {
      const idx = Number((cluster.querySelector("title") || {}).textContent.replace("cluster_", ""));
      const failed = state.subtasks.some((s) => s.parallelIdx === idx && s.status === "FAILED");
      cluster.dataset.status = failed ? "FAILED" : "";
      cluster.setAttribute("role", "group");
      cluster.setAttribute("aria-label", `chain #${idx + 1}${failed ? ": a step FAILED" : ""}`);
      const outline = cluster.querySelector("polygon, path");
      if (outline) {
        outline.setAttribute("stroke", failed ? "#c0392b" : "black");
        outline.setAttribute("stroke-width", failed ? "3" : "1");
      }
    }
    if (selected !== null) detail();
  }

  function subtask(id) { return state.subtasks.find((s) => s.id === id); }

  function detail() {
    const sub = subtask(selected);
    byId("detail").hidden = false;
    byId("detail-title").textContent = `#${sub.id} ${sub.name}`;
    byId("detail-status").textContent = sub.status;
    byId("detail-host").textContent = sub.host || "(the task)";
    byId("detail-operation").textContent = sub.operation;
    byId("detail-runs").textContent = String(sub.runTime);
    byId("detail-timeout").textContent = sub.timeout ? `${sub.timeout} s` : "none";
    byId("detail-start").textContent = sub.startTime || "";
    byId("detail-finish").textContent = sub.finishTime || "";
    byId("sub-retry").hidden = !sub.actions.retry;
    byId("sub-skip").hidden = !sub.actions.skip;
    byId("sub-cancel").hidden = !sub.actions.cancel;
    for (const [id, node] of nodes) node.classList.toggle("selected", id === selected);
  }

  async function readLog() {
    if (selected === null) return;
    const id = selected;
    try {
      const data = await api("GET", `/api/v2/tasks/instances/${state.id}/subtasks/${id}/log`);
      if (id !== selected) return;
      const box = byId("detail-log");
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      box.textContent = data.log || "(empty)";
      if (atEnd) box.scrollTop = box.scrollHeight;
    } catch (problem) { message.textContent = problem.message; }
  }

  function select(id) {
    selected = id;
    byId("detail-log").textContent = "";
    detail();
    readLog();
    clearInterval(logTimer);
    logTimer = setInterval(() => {  // follows the log while the subtask runs
      const sub = subtask(selected);
      if (sub && ACTIVE.includes(sub.status) && !document.hidden) readLog();
    }, 1000);
  }

  async function refresh() {
    const answer = await poll(`/tasks/${state.id}/state`);
    if (!answer) return answer;
    const was = selected !== null ? subtask(selected).status : null;
    state = await answer.json();
    draw();
    if (selected !== null && was !== subtask(selected).status) readLog();
    return true;
  }
  const running = () => state.status === "RUNNING" || state.subtasks.some((s) => ACTIVE.includes(s.status));

  async function act(label, method, path) {
    message.textContent = `${label}…`;
    message.focus();  // the button may disappear with the state it changes
    try {
      await api(method, path);
      message.textContent = `${label}: done`;
    } catch (problem) { message.textContent = `${label}: ${problem.message}`; }
    refresh();
  }

  byId("task-retry").addEventListener("click", () =>
    act("Retry", "POST", `/api/v2/tasks/instances/${state.id}/retry`));
  byId("task-rollback").addEventListener("click", () =>
    act("Rollback", "POST", `/api/v2/tasks/instances/${state.id}/rollback`));
  for (const button of document.querySelectorAll("[data-sub-action]")) {
    button.addEventListener("click", () => {
      const what = button.dataset.subAction;
      act(button.textContent, "POST",
        `/api/v2/tasks/instances/${state.id}/subtasks/${selected}/${what}`);
    });
  }
  draw();
  // Every second while it runs; every 5 s once it is over, or while the tab is hidden.
  repeat(refresh, () => (running() && !document.hidden ? 1000 : 5000));
}

// -- forms that send an OCP request body -------------------------------------------------------
function pairs(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const at = line.indexOf("=");
    return at < 0 ? { name: line, value: "" } : { name: line.slice(0, at).trim(), value: line.slice(at + 1).trim() };
  });
}

function number(value) { return value === "" ? null : Number(value); }

function createClusterPage() {
  const form = document.getElementById("create-cluster");
  const errors = document.getElementById("form-errors");
  errors.tabIndex = -1;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const chosen = f.obCluster.selectedOptions[0];
    const body = {
      name: f.name.value,
      workMode: f.workMode.value,
      obLinks: chosen && chosen.value ? [{
        clusterName: chosen.dataset.name, obClusterId: Number(chosen.value), username: f.username.value,
      }] : [],
      obproxyInstallParam: {
        hostIds: [...form.querySelectorAll('input[name="hostIds"]:checked')].map((c) => Number(c.value)),
        sqlPort: number(f.sqlPort.value), exportPort: number(f.exportPort.value),
        version: f.version.value || null,
      },
      startupParameters: pairs(f.startupParameters.value),
      parameters: pairs(f.parameters.value),
    };
    if (f.address.value) body.address = f.address.value;
    if (f.port.value) body.port = Number(f.port.value);
    try {
      const task = await api("POST", "/api/v2/obproxy/clusters", body);
      window.location = `/tasks/${task.id}`;
    } catch (problem) { showErrors(errors, problem); }
  });
}

function hostsPage() {
  const form = document.getElementById("add-hosts");
  if (!form) return;  // not offered: the user may not add hosts
  const errors = document.getElementById("form-errors");
  errors.tabIndex = -1;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const hosts = f.addresses.value.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
      const [address, ...name] = line.split(/\s+/);
      return name.length ? { innerIpAddress: address, alias: name.join(" ") } : { innerIpAddress: address };
    });
    const body = {
      hostBasicDataList: hosts, sshPort: number(f.sshPort.value),
      credentialId: number(f.credentialId.value), trustOnFirstUse: f.trustOnFirstUse.checked,
    };
    try {
      const data = await api("POST", "/api/v2/compute/hosts/batchCreate", body);
      // A "Prepare host" task per host: one host's task is opened, several are in the list.
      window.location = data.contents.length === 1 ? `/tasks/${data.contents[0].id}` : "/tasks";
    } catch (problem) { showErrors(errors, problem); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "tasks") tasksPage();
  if (page === "task") taskPage();
  if (page === "cluster_new") createClusterPage();
  if (page === "hosts") hostsPage();
});
