// The console: a task list and a live task page, on the public API and event socket only.

import { api, adoptTokenFromUrl, ApiError, EventStream, getKey, keyIsSessionOnly, setKey } from "./api.js";
import { renderDag } from "./dag.js";

const LIST_REFRESH_MS = 4000;
const SNAPSHOT_DEBOUNCE_MS = 250;
const TIMELINE_MAX = 500;
const STREAM_TAIL_CHARS = 3000;
const BREAKPOINTS = ["after_plan", "before_milestone", "after_milestone", "on_failure", "budget_exhausted", "before_tool"];
const TOOL_EVENTS = new Set(["TOOL_CALL_STARTED", "TOOL_CALL_COMPLETED", "TOOL_CALL_FAILED"]);
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const TERMINAL_EVENTS = new Set(["TASK_COMPLETED", "TASK_FAILED", "TASK_CANCELLED"]);
// Stored events after which the page re-reads the task (statuses, totals, plan).
const SNAPSHOT_EVENTS = new Set([
  "TASK_STARTED", "TASK_PROGRESS", "TASK_PAUSED", "BREAKPOINT_HIT", "BREAKPOINT_RESUMED",
  "MILESTONE_STATUS_CHANGED", "MILESTONE_COMPLETED", "MILESTONE_FAILED", "MILESTONE_RETRY",
  "AGENT_COMPLETED", "AGENT_FAILED", "LLM_COMPLETE", ...TOOL_EVENTS, ...TERMINAL_EVENTS,
]);

let cleanup = () => {};
let consoleConfig = {};

/** Build an element: h("div", {class: "x"}, "text", child). Text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const money = (totals) => `$${(totals.cost_usd || 0).toFixed(4)}${totals.cost_unknown ? " (+unpriced)" : ""}`;
const tokens = (totals) => (totals.input_tokens || 0) + (totals.output_tokens || 0);
// Usage the provider did not report was counted locally: the totals say so.
const estimatedMark = (totals) => (totals.estimated ? " (some estimated)" : "");
const clock = (iso) => {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso ?? "") : `${when.toISOString().slice(11, 19)} UTC`;
};
const waitingText = (d) =>
  `waiting on provider ${d.model} since ${clock(d.since)}, next try at ${clock(d.next_try_at)}, last error: ${d.last_error}`;
const toolLabel = (d) => (d.server && d.tool ? `${d.server}.${d.tool}` : d.tool || d.function_name || "?");
const oneLine = (text, limit) => {
  const flat = String(text ?? "").split(/\s+/).join(" ").trim();
  return flat.length <= limit ? flat : `${flat.slice(0, limit - 1)}…`;
};
/** A TOOL_CALL_* event in the words of the CLI: `tool time.get_current_time · 8 ms · 115 chars → {...}`. */
function toolEventText(event) {
  const d = event.details || {};
  const label = `tool ${toolLabel(d)}`;
  if (event.type === "TOOL_CALL_STARTED") {
    return [label + (d.arguments ? ` ${oneLine(d.arguments, 120)}` : ""), Number.isInteger(d.attempt) ? `attempt ${d.attempt}` : null]
      .filter(Boolean).join(" · ");
  }
  const timing = Number.isInteger(d.duration_ms) ? [`${d.duration_ms} ms`] : [];
  if (event.type === "TOOL_CALL_COMPLETED") {
    const line = [label, ...timing, Number.isInteger(d.result_chars) ? `${d.result_chars} chars` : null].filter(Boolean).join(" · ");
    return d.result_preview ? `${line} → ${oneLine(d.result_preview, 200)}` : line;
  }
  return `${[`${label} failed`, ...timing].join(" · ")}: ${d.error ? oneLine(d.error, 200) : event.message}`;
}
const prettyJson = (text) => {
  try {
    return JSON.stringify(JSON.parse(text || "{}"), null, 2);
  } catch {
    return String(text ?? "");
  }
};
const badge = (status, id) => h("span", { class: `badge status-${status}`, id }, status);
const time = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function temporalLink(workflowId) {
  if (!consoleConfig.temporal_ui_url) return null;
  const base = consoleConfig.temporal_ui_url.replace(/\/$/, "");
  const ns = encodeURIComponent(consoleConfig.temporal_namespace || "default");
  return `${base}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}`;
}

// AGENT_TRACE_UI_URL: a template with {trace_id} (e.g. Jaeger's http://host:16686/trace/{trace_id}).
function traceLink(traceId) {
  if (!consoleConfig.trace_ui_url || !traceId) return null;
  return consoleConfig.trace_ui_url.replace("{trace_id}", encodeURIComponent(traceId));
}

function errorBox(error) {
  const text = error instanceof ApiError ? `${error.status} ${error.code}: ${error.message}` : String(error);
  const hint = error instanceof ApiError && error.status === 401 ? " — enter your API key above." : "";
  return h("div", { class: "error", role: "alert" }, text + hint);
}

// ------------------------------------------------------------------------- task list

function newTaskForm(onCreated) {
  const status = h("span", { class: "muted" });
  const form = h(
    "form",
    { class: "card new-task", id: "new-task" },
    h("h2", {}, "New task"),
    h("textarea", { name: "goal", rows: 2, required: true, placeholder: "Goal, e.g. Write a short report on durable execution" }),
    h(
      "div",
      { class: "row" },
      h("span", { class: "muted" }, "Breakpoints:"),
      BREAKPOINTS.map((b) => h("label", {}, h("input", { type: "checkbox", name: "breakpoints", value: b }), ` ${b}`)),
    ),
    h(
      "div",
      { class: "row" },
      h("label", {}, "Budget USD ", h("input", { name: "budget", type: "number", min: "0", step: "0.01", size: 6 })),
      h("label", {}, "Tools ", h("input", { name: "tools", size: 28, placeholder: "all (or: time, docs.search)" })),
      h("button", { type: "submit" }, "Start"),
      status,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { goal: String(data.get("goal") || "").trim(), breakpoints: data.getAll("breakpoints") };
    const budget = parseFloat(String(data.get("budget") || ""));
    if (budget > 0) body.budget = { max_cost_usd: budget };
    const tools = String(data.get("tools") || "").split(",").map((t) => t.trim()).filter(Boolean);
    if (tools.length) body.tools = tools;
    status.textContent = "starting…";
    try {
      const task = await api.createTask(body);
      onCreated(task);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

async function listPage(root) {
  const table = h("tbody");
  const message = h("div");
  root.replaceChildren(
    newTaskForm((task) => (window.location.hash = `#/tasks/${task.id}`)),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Tasks"),
      message,
      h(
        "table",
        { class: "tasks", id: "task-list" },
        h("thead", {}, h("tr", {}, ["status", "goal", "tokens", "cost", "created", ""].map((c) => h("th", {}, c)))),
        table,
      ),
    ),
  );
  let stopped = false;
  const load = async () => {
    try {
      const page = await api.listTasks();
      message.replaceChildren();
      table.replaceChildren(
        ...page.items.map((t) =>
          h(
            "tr",
            { "data-task-id": t.id },
            h("td", {}, badge(t.status), t.queue_position ? ` #${t.queue_position}` : null),
            h("td", {}, h("a", { href: `#/tasks/${t.id}` }, t.goal.length > 90 ? `${t.goal.slice(0, 89)}…` : t.goal)),
            h("td", { class: "num" }, `${tokens(t.totals)}${t.totals.estimated ? "*" : ""}`),
            h("td", { class: "num" }, money(t.totals)),
            h("td", {}, time(t.created_at)),
            h("td", {}, temporalLink(t.workflow_id) ? h("a", { href: temporalLink(t.workflow_id), target: "_blank", rel: "noopener" }, "Temporal") : ""),
          ),
        ),
      );
      if (!page.items.length) message.replaceChildren(h("p", { class: "muted" }, "No tasks yet."));
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  };
  await load();
  const timer = setInterval(() => !stopped && load(), LIST_REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

// ------------------------------------------------------------------------- task page

function planDocument(milestones) {
  const doc = {
    milestones: [...milestones]
      .sort((a, b) => a.position - b.position)
      .map((m) => ({ key: m.key, title: m.title, description: m.description, depends_on: m.depends_on })),
  };
  return JSON.stringify(doc, null, 2);
}

/** The PlanEdit between the current plan and an edited document; null when unchanged. */
export function planEditBetween(milestones, edited) {
  const before = new Map(milestones.map((m) => [m.key, m]));
  const after = new Map(edited.milestones.map((m) => [m.key, m]));
  const add = [];
  const change = [];
  for (const [key, spec] of after) {
    const current = before.get(key);
    if (!current) {
      add.push({ key, title: spec.title, description: spec.description || "", depends_on: spec.depends_on || [] });
      continue;
    }
    const diff = { key };
    if (spec.title !== current.title) diff.title = spec.title;
    if ((spec.description || "") !== current.description) diff.description = spec.description || "";
    if (JSON.stringify(spec.depends_on || []) !== JSON.stringify(current.depends_on)) diff.depends_on = spec.depends_on || [];
    if (Object.keys(diff).length > 1) change.push(diff);
  }
  const remove = [...before.keys()].filter((key) => !after.has(key));
  return add.length || remove.length || change.length ? { add, remove, change } : null;
}

function toolCallCard(call) {
  return h("div", { class: "tool-call", id: "paused-tool-call" },
    h("dl", { class: "facts" },
      h("dt", {}, "server"), h("dd", { id: "paused-tool-server" }, call.server),
      h("dt", {}, "tool"), h("dd", { id: "paused-tool-name" }, call.tool)),
    h("pre", { class: "arguments", id: "paused-tool-arguments" }, prettyJson(call.arguments)));
}

function resumeForm(task, onDone) {
  const pause = task.paused;
  // The server says which actions fit this breakpoint (the pause state's allowed_actions).
  const actions = pause.allowed_actions;
  const status = h("div", { class: "form-status" });
  if (pause.tool_call) return toolResumeForm(task, pause, actions, status, onDone);
  const editor = h("textarea", { name: "plan", rows: 12, spellcheck: "false", class: "plan-editor", id: "plan-editor" }, planDocument(task.milestones));
  const editToggle = h("input", { type: "checkbox", name: "edit", id: "edit-plan" });
  const form = h(
    "form",
    { class: "card breakpoint", id: "resume-form" },
    h("h2", {}, `Paused at ${pause.kind}`),
    h("p", {}, pause.reason || "", " ", h("code", {}, pause.breakpoint_id)),
    pause.timeout_at ? h("p", { class: "muted" }, `Default action ${pause.default_action} at ${time(pause.timeout_at)}`) : null,
    h(
      "div",
      { class: "row" },
      h("label", {}, "Action "),
      h("select", { name: "action", id: "resume-action" }, actions.map((a) => h("option", { value: a }, a))),
      h("label", {}, editToggle, " edit the plan"),
    ),
    h("details", { id: "plan-details" }, h("summary", {}, "Plan (JSON: add, remove or change milestones)"), editor),
    h("label", { class: "block" }, "Feedback for the agents", h("textarea", { name: "feedback", rows: 2 })),
    h("div", { class: "row" }, h("button", { type: "submit", id: "resume" }, "Resume"), status),
  );
  editToggle.addEventListener("change", () => {
    form.querySelector("#plan-details").open = editToggle.checked;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { breakpoint_id: pause.breakpoint_id, action: data.get("action") };
    const feedback = String(data.get("feedback") || "").trim();
    if (feedback) body.feedback = feedback;
    if (editToggle.checked) {
      try {
        const edits = planEditBetween(task.milestones, JSON.parse(editor.value));
        if (edits) body.edits = edits;
      } catch (error) {
        status.replaceChildren(errorBox(`invalid plan JSON: ${error.message}`));
        return;
      }
    }
    status.textContent = "resuming…";
    form.querySelector("#resume").disabled = true;
    try {
      const out = await api.resume(task.id, body);
      status.textContent = `resumed: ${out.action}`;
      onDone();
    } catch (error) {
      form.querySelector("#resume").disabled = false;
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

/** At `before_tool`: the call, the allowed actions, a JSON editor for `edit`, a reason for `deny`. */
function toolResumeForm(task, pause, actions, status, onDone) {
  const call = pause.tool_call;
  const argsEditor = h("textarea", { name: "arguments", rows: 6, spellcheck: "false", class: "plan-editor", id: "arguments-editor" }, prettyJson(call.arguments));
  const argsBlock = h("label", { class: "block", id: "arguments-block", hidden: true }, "New arguments (JSON, checked against the tool's input schema)", argsEditor);
  const feedbackLabel = h("span", {}, "Reason (the model reads it)");
  const feedbackBlock = h("label", { class: "block", id: "feedback-block", hidden: true }, feedbackLabel, h("textarea", { name: "feedback", rows: 2 }));
  const select = h("select", { name: "action", id: "resume-action" }, actions.map((a) => h("option", { value: a }, a)));
  const form = h(
    "form",
    { class: "card breakpoint", id: "resume-form" },
    h("h2", {}, `Paused at ${pause.kind}`),
    h("p", {}, `The agent wants to call ${call.server}.${call.tool} `, h("code", {}, pause.breakpoint_id)),
    toolCallCard(call),
    pause.timeout_at ? h("p", { class: "muted" }, `Default action ${pause.default_action} at ${time(pause.timeout_at)}`) : null,
    h("div", { class: "row" }, h("label", {}, "Action "), select),
    argsBlock,
    feedbackBlock,
    h("div", { class: "row" }, h("button", { type: "submit", id: "resume" }, "Resume"), status),
  );
  const sync = () => {
    argsBlock.hidden = select.value !== "edit";
    feedbackBlock.hidden = select.value !== "deny";
  };
  select.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { breakpoint_id: pause.breakpoint_id, action: select.value };
    const feedback = String(data.get("feedback") || "").trim();
    if (select.value === "deny" && feedback) body.feedback = feedback;
    if (select.value === "edit") {
      let parsed;
      try {
        parsed = JSON.parse(argsEditor.value);
      } catch (error) {
        status.replaceChildren(errorBox(`invalid arguments JSON: ${error.message}`));
        return;
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        status.replaceChildren(errorBox("the arguments must be a JSON object ({...})"));
        return;
      }
      body.arguments = parsed;
    }
    status.textContent = "resuming…";
    form.querySelector("#resume").disabled = true;
    try {
      const out = await api.resume(task.id, body);
      status.textContent = `resumed: ${out.action}`;
      onDone();
    } catch (error) {
      form.querySelector("#resume").disabled = false;
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

async function taskPage(root, taskId) {
  const state = {
    task: null,
    streams: new Map(), // name -> {label, text, attemptKey, active, key}
    timeline: [],
    lastSeq: 0,
    connection: "connecting",
    resumeFor: null,
    waiting: new Map(), // stream name -> LLM_WAITING details, until LLM_RECOVERED
    toolCalls: [], // GET /v1/tasks/{id}/tool-calls, re-read after tool events
  };
  const els = {
    header: h("section", { class: "card task-header", id: "task-header" }),
    breakpoint: h("div", { id: "breakpoint" }),
    dag: h("div", { class: "dag-wrap", id: "dag" }),
    milestones: h("tbody"),
    streams: h("div", { class: "streams", id: "streams" }),
    timeline: h("ol", { class: "timeline", id: "timeline" }),
    result: h("div", { id: "result" }),
    error: h("div"),
  };
  root.replaceChildren(
    els.error,
    els.header,
    els.breakpoint,
    h("section", { class: "card" }, h("h2", {}, "Milestones"), els.dag,
      h("table", { class: "milestones", id: "milestones" },
        h("thead", {}, h("tr", {}, ["", "milestone", "title", "after", "status", "attempts", "tokens", "cost"].map((c) => h("th", {}, c)))),
        els.milestones)),
    h("section", { class: "card" }, h("h2", {}, "Live output"), els.streams),
    els.result,
    h("section", { class: "card" }, h("h2", {}, "Events"), els.timeline),
  );

  const keyOf = (milestoneId) => state.task?.milestones.find((m) => m.id === milestoneId)?.key || null;

  function renderHeader() {
    const t = state.task;
    const link = temporalLink(t.workflow_id);
    const terminal = TERMINAL.has(t.status);
    els.header.replaceChildren(
      h("div", { class: "row spread" },
        h("h1", {}, t.goal),
        h("div", { class: "row" },
          link ? h("a", { href: link, target: "_blank", rel: "noopener", id: "temporal-link", class: "button" }, "Open in Temporal UI") : null,
          terminal ? null : h("button", { id: "cancel", class: "danger", onclick: onCancel }, "Cancel"))),
      h("dl", { class: "facts" },
        h("dt", {}, "status"), h("dd", {}, badge(t.status, "task-status"),
          t.queue_position ? h("span", { id: "queue-position" }, ` position ${t.queue_position} in your queue`) : null),
        h("dt", {}, "task"), h("dd", {}, h("code", {}, t.id)),
        h("dt", {}, "tokens"), h("dd", { id: "totals-tokens" }, `${t.totals.input_tokens} in / ${t.totals.output_tokens} out${estimatedMark(t.totals)}`),
        ...[...state.waiting.values()].flatMap((d) => [
          h("dt", {}, "waiting"), h("dd", { class: "provider-waiting" }, waitingText(d))]),
        h("dt", {}, "cost"), h("dd", { id: "totals-cost" }, money(t.totals)),
        h("dt", {}, "budget"), h("dd", {}, t.budget.max_cost_usd ? `$${t.budget.max_cost_usd}` : "unlimited"),
        h("dt", {}, "tool calls"), h("dd", { id: "totals-tool-calls" },
          `${t.totals.tool_calls || 0}${t.budget.max_tool_calls ? ` of ${t.budget.max_tool_calls}` : ""}`),
        h("dt", {}, "tools"), h("dd", { id: "task-tools", class: "muted" },
          t.tools ? t.tools.map((x) => x.qualified_name).join(", ") || "none" : t.tools_requested ? t.tools_requested.join(", ") : "all"),
        h("dt", {}, "progress"), h("dd", {}, progressBar(t)),
        h("dt", {}, "socket"), h("dd", { id: "socket-state", class: "muted" }, state.connection)),
    );
  }

  function progressBar(t) {
    const total = t.milestones.length;
    const done = t.milestones.filter((m) => ["passed", "failed", "skipped"].includes(m.status)).length;
    return h("span", { class: "row" },
      h("progress", { max: total || 1, value: done, id: "progress" }),
      ` ${done}/${total} milestones`);
  }

  function activeKeys() {
    return new Set([...state.streams.values()].filter((s) => s.active && s.key).map((s) => s.key));
  }

  function renderPlan() {
    const t = state.task;
    renderDag(els.dag, t.milestones, activeKeys());
    els.milestones.replaceChildren(
      ...[...t.milestones].sort((a, b) => a.position - b.position).flatMap((m, i) => [
        h("tr", { "data-key": m.key },
          h("td", { class: "muted" }, i + 1),
          h("td", {}, h("code", {}, m.key)),
          h("td", { title: m.description }, m.title),
          h("td", { class: "muted" }, m.depends_on.join(", ") || "—"),
          h("td", {}, badge(m.status)),
          h("td", { class: "num" }, m.attempts),
          h("td", { class: "num" }, m.input_tokens + m.output_tokens),
          h("td", { class: "num" }, `$${m.cost_usd.toFixed(4)}`)),
        ...toolCallRows(m.key),
      ]));
  }

  // The milestone's tool calls, each a row under it: tool, arguments, status, runs, time, result.
  function toolCallRows(key) {
    return state.toolCalls.filter((c) => c.milestone_key === key).map((c) =>
      h("tr", { class: `tool-call-row status-${c.status}`, "data-key": key, "data-call": c.id },
        h("td", {}, ""),
        h("td", { class: "muted" }, `attempt ${c.attempt}`),
        h("td", { colspan: 2 }, h("code", {}, toolLabel(c)), " ", h("code", { class: "muted" }, oneLine(c.arguments, 80))),
        h("td", {}, badge(c.status)),
        h("td", { class: "num", title: "executions" }, c.executions),
        h("td", { class: "num" }, c.duration_ms === null || c.duration_ms === undefined ? "—" : `${c.duration_ms} ms`),
        h("td", { class: "tool-result", title: c.result_preview || "" },
          c.result_preview ? `${oneLine(c.result_preview, 60)} (${c.result_chars} chars)` : "—")));
  }

  async function loadToolCalls() {
    try {
      state.toolCalls = (await api.toolCalls(taskId)).items;
    } catch {
      return; // the snapshot shows the error, if any
    }
    renderPlan();
  }

  function renderBreakpoint() {
    const t = state.task;
    if (t.status === "paused" && t.paused) {
      if (state.resumeFor !== t.paused.breakpoint_id) {
        state.resumeFor = t.paused.breakpoint_id;
        els.breakpoint.replaceChildren(resumeForm(t, () => scheduleSnapshot()));
      }
    } else if (state.resumeFor !== null) {
      state.resumeFor = null;
      els.breakpoint.replaceChildren();
    }
  }

  function renderResult() {
    const t = state.task;
    if (!TERMINAL.has(t.status)) {
      els.result.replaceChildren();
      return;
    }
    els.result.replaceChildren(
      h("section", { class: `card result status-${t.status}`, id: "task-result" },
        h("h2", {}, `Task ${t.status}`),
        t.failure_reason ? h("p", {}, `Reason: ${t.failure_reason}`) : null,
        t.error ? h("pre", { class: "error" }, t.error) : null,
        t.result ? h("pre", { class: "summary" }, t.result) : null));
  }

  function renderStreams() {
    const shown = [...state.streams.values()].filter((s) => s.text).slice(-6);
    if (!shown.length) {
      els.streams.replaceChildren(h("p", { class: "muted" }, "Nothing streaming."));
      return;
    }
    els.streams.replaceChildren(
      ...shown.map((s) =>
        h("figure", { class: `stream${s.active ? " active" : ""}` },
          h("figcaption", {}, s.label, s.active ? " · streaming" : " · done"),
          h("pre", {}, s.text))));
  }

  function addTimeline(event) {
    state.timeline.push(event);
    if (state.timeline.length > TIMELINE_MAX) {
      state.timeline.shift();
      els.timeline.firstChild?.remove();
    }
    const key = event.details?.key || keyOf(event.milestone_id);
    els.timeline.append(
      h("li", { class: `ev ev-${event.type}`, "data-seq": event.sequence_number },
        h("span", { class: "seq" }, `#${event.sequence_number}`),
        h("span", { class: "time" }, new Date(event.timestamp).toLocaleTimeString()),
        h("span", { class: "type" }, event.type),
        key ? h("code", {}, key) : null,
        h("span", { class: "msg" }, TOOL_EVENTS.has(event.type) ? toolEventText(event) : event.message),
        traceLink(event.details?.trace_id)
          ? h("a", { class: "trace", href: traceLink(event.details.trace_id), target: "_blank", rel: "noopener" }, "trace")
          : null));
    els.timeline.scrollTop = els.timeline.scrollHeight;
  }

  function streamName(event) {
    const key = event.details?.key || keyOf(event.milestone_id);
    return { name: `${key || "_task"}:${event.agent || "agent"}`, key };
  }

  function onEvent(event, stored) {
    if (!stored) {
      const { name, key } = streamName(event);
      const d = event.details || {};
      const attemptKey = `${d.activity_id}|${d.attempt}|${d.milestone_attempt}`;
      let s = state.streams.get(name);
      if (!s) {
        s = { label: key ? `${key} · ${event.agent}` : event.agent, text: "", attemptKey, active: true, key };
        state.streams.set(name, s);
      }
      if (s.attemptKey !== attemptKey) {
        s.text = ""; // a retried attempt streams again from the start
        s.attemptKey = attemptKey;
      }
      s.active = true;
      s.text = (s.text + (d.text ?? event.message)).slice(-STREAM_TAIL_CHARS);
      renderStreams();
      return;
    }
    state.lastSeq = Math.max(state.lastSeq, event.sequence_number);
    addTimeline(event);
    if (event.type === "AGENT_STARTED") {
      const { name, key } = streamName(event);
      const attempt = event.details?.attempt;
      state.streams.set(name, {
        label: `${key ? `${key} · ` : ""}${event.agent}${attempt ? ` · attempt ${attempt}` : ""}`,
        text: "", attemptKey: null, active: true, key,
      });
    } else if (event.type === "LLM_COMPLETE" && typeof event.details?.text === "string") {
      // The full answer: also what a page opened after the stream shows.
      const { name, key } = streamName(event);
      const s = state.streams.get(name) || { label: key ? `${key} · ${event.agent}` : event.agent, key };
      state.streams.set(name, { ...s, text: event.details.text.slice(-STREAM_TAIL_CHARS), active: false });
    } else if (event.type === "AGENT_COMPLETED" || event.type === "AGENT_FAILED") {
      const s = state.streams.get(streamName(event).name);
      if (s) s.active = false;
    } else if (event.type === "LLM_WAITING") {
      state.waiting.set(streamName(event).name, event.details || {});
      if (state.task) renderHeader();
    } else if (event.type === "LLM_RECOVERED") {
      state.waiting.delete(streamName(event).name);
      if (state.task) renderHeader();
    }
    if (TERMINAL_EVENTS.has(event.type)) {
      for (const s of state.streams.values()) s.active = false;
      state.waiting.clear();
    }
    renderStreams();
    if (SNAPSHOT_EVENTS.has(event.type)) scheduleSnapshot();
  }

  let snapshotTimer = null;
  let stopped = false;
  function scheduleSnapshot() {
    if (snapshotTimer || stopped) return;
    snapshotTimer = setTimeout(async () => {
      snapshotTimer = null;
      await loadSnapshot();
    }, SNAPSHOT_DEBOUNCE_MS);
  }

  async function loadSnapshot() {
    try {
      state.task = await api.getTask(taskId);
      els.error.replaceChildren();
    } catch (error) {
      els.error.replaceChildren(errorBox(error));
      return false;
    }
    renderHeader();
    renderPlan();
    renderBreakpoint();
    renderResult();
    if (state.task.tools?.length || state.toolCalls.length) loadToolCalls();
    return true;
  }

  async function onCancel() {
    if (!window.confirm("Cancel this task?")) return;
    try {
      await api.cancel(taskId);
      scheduleSnapshot();
    } catch (error) {
      els.error.replaceChildren(errorBox(error));
    }
  }

  if (!(await loadSnapshot())) return () => {};
  renderStreams();
  const stream = new EventStream(taskId, 0, {
    onEvent,
    onCaughtUp: () => {
      state.connection = "live";
      document.body.dataset.caughtUp = "true";
      scheduleSnapshot();
    },
    onState: (s) => {
      state.connection = s;
      const node = document.getElementById("socket-state");
      if (node) node.textContent = s;
    },
  });
  return () => {
    stopped = true;
    clearTimeout(snapshotTimer);
    stream.close();
  };
}

// ------------------------------------------------------------------------- shell

async function route() {
  cleanup();
  cleanup = () => {};
  delete document.body.dataset.caughtUp;
  const root = document.getElementById("app");
  const match = window.location.hash.match(/^#\/tasks\/([0-9a-fA-F-]{36})/);
  if (!getKey()) {
    root.replaceChildren(h("div", { class: "card" }, h("p", {}, "Enter your API key above (the `agent up` output prints a dev key).")));
    return;
  }
  cleanup = match ? await taskPage(root, match[1]) : await listPage(root);
}

function setupLogin() {
  const form = document.getElementById("login");
  const input = document.getElementById("api-key");
  const state = document.getElementById("login-state");
  const sessionOnly = document.getElementById("key-session-only");
  const saved = () => (keyIsSessionOnly() ? "saved for this session" : "saved");
  input.value = getKey();
  sessionOnly.checked = keyIsSessionOnly();
  state.textContent = getKey() ? saved() : "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey(input.value.trim(), sessionOnly.checked);
    state.textContent = getKey() ? saved() : "cleared";
    route();
  });
}

async function start() {
  adoptTokenFromUrl();
  setupLogin();
  try {
    consoleConfig = await api.config();
  } catch {
    consoleConfig = {};
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
