// BayLens review UI: keyboard navigation and live updates of the queue, the zoomable scan
// viewer with layer toggles, and the case forms (sent to the JSON API with the CSRF token).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function setupQueue() {
  const table = document.getElementById("queue");
  if (!table) return;
  const body = table.tBodies[0];
  let selected = -1;
  const rows = () => Array.from(body.rows);
  const select = (i) => {
    const rs = rows();
    if (!rs.length) return;
    selected = Math.max(0, Math.min(rs.length - 1, i));
    rs.forEach((r, j) => r.classList.toggle("selected", j === selected));
    rs[selected].focus({ preventScroll: true });
    rs[selected].scrollIntoView({ block: "nearest" });
  };
  body.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-href]");
    if (tr && !e.target.closest("a")) location.href = tr.dataset.href;
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j") { select(selected + 1); e.preventDefault(); }
    else if (e.key === "k") { select(selected - 1); e.preventDefault(); }
    else if (e.key === "Enter" && selected >= 0) { location.href = rows()[selected].dataset.href; }
  });
  if (table.dataset.live !== "true" || !window.EventSource) return;
  const source = new EventSource("/api/v1/events");
  source.addEventListener("case", (e) => {
    const c = JSON.parse(e.data);
    if (body.querySelector(`tr[data-href="/cases/${c.id}"]`)) return;
    const tr = document.createElement("tr");
    tr.dataset.href = `/cases/${c.id}`;
    tr.dataset.risk = c.risk;
    tr.tabIndex = -1;
    tr.className = "new";
    const lane = esc(c.lane);
    tr.innerHTML = `<td><a href="/cases/${c.id}">#${c.id}</a></td><td>${esc(c.bay)}</td>` +
      `<td>${esc(c.captured_at.replace("T", " ").replace("Z", ""))}</td><td>${esc(c.container_code ?? "—")}</td>` +
      `<td class="num">${Number(c.risk).toFixed(2)}</td><td><span class="lane lane-${lane}">${lane}</span></td>` +
      `<td>${esc(c.status.replaceAll("_", " "))}</td><td class="num">${c.findings_count}</td><td>${esc(c.assigned_to ?? "")}</td>`;
    // Keep the list ranked by risk.
    const after = rows().find((r) => Number(r.dataset.risk) < c.risk);
    body.insertBefore(tr, after ?? null);
    document.querySelector(".empty")?.remove();
  });
}

function setupViewer() {
  const viewer = document.getElementById("viewer");
  const stage = document.getElementById("stage");
  if (!viewer || !stage) return;
  const w = Number(stage.dataset.w), h = Number(stage.dataset.h);
  stage.style.width = `${w}px`;
  stage.style.height = `${h}px`;
  let scale = 1, tx = 0, ty = 0;
  const apply = () => { stage.style.transform = `translate(${tx}px, ${ty}px) scale(${scale})`; };
  const fit = () => {
    scale = Math.min(viewer.clientWidth / w, viewer.clientHeight / h);
    tx = (viewer.clientWidth - w * scale) / 2;
    ty = (viewer.clientHeight - h * scale) / 2;
    apply();
  };
  const zoomAt = (factor, cx, cy) => {
    const next = Math.max(0.05, Math.min(16, scale * factor));
    tx = cx - (cx - tx) * (next / scale);
    ty = cy - (cy - ty) * (next / scale);
    scale = next;
    apply();
  };
  viewer.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = viewer.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag = null;
  viewer.addEventListener("pointerdown", (e) => { drag = { x: e.clientX - tx, y: e.clientY - ty }; viewer.setPointerCapture(e.pointerId); });
  viewer.addEventListener("pointermove", (e) => { if (drag) { tx = e.clientX - drag.x; ty = e.clientY - drag.y; apply(); } });
  viewer.addEventListener("pointerup", () => { drag = null; });
  viewer.addEventListener("keydown", (e) => {
    const step = 40;
    if (e.key === "+" || e.key === "=") zoomAt(1.2, viewer.clientWidth / 2, viewer.clientHeight / 2);
    else if (e.key === "-") zoomAt(1 / 1.2, viewer.clientWidth / 2, viewer.clientHeight / 2);
    else if (e.key === "ArrowLeft") tx += step; else if (e.key === "ArrowRight") tx -= step;
    else if (e.key === "ArrowUp") ty += step; else if (e.key === "ArrowDown") ty -= step;
    else if (e.key === "0") fit(); else return;
    e.preventDefault(); apply();
  });
  document.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => {
    const cx = viewer.clientWidth / 2, cy = viewer.clientHeight / 2;
    if (b.dataset.zoom === "in") zoomAt(1.25, cx, cy);
    else if (b.dataset.zoom === "out") zoomAt(0.8, cx, cy);
    else if (b.dataset.zoom === "full") zoomAt(1 / scale, cx, cy);
    else fit();
  }));
  document.querySelectorAll("[data-layer]").forEach((box) => {
    const layer = document.getElementById(box.dataset.layer);
    const sync = () => layer?.classList.toggle("hidden", !box.checked);
    box.addEventListener("change", sync);
    sync();
  });
  fit();
  window.addEventListener("resize", fit);
}

function setupForms() {
  document.querySelectorAll("form.api").forEach((form) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const out = form.querySelector(".form-error");
      out.textContent = "";
      const data = Object.fromEntries(new FormData(form).entries());
      if (data.note === "") delete data.note;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const res = await fetch(form.dataset.action, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify(data),
          credentials: "same-origin",
        });
        if (res.ok) { location.reload(); return; }
        const body = await res.json().catch(() => ({}));
        out.textContent = body.error ?? `Failed: HTTP ${res.status}`;
      } catch (err) {
        out.textContent = `Network error: ${err}`;
      } finally {
        button.disabled = false;
      }
    });
  });
}

// The fleet page reloads its table and summary every few seconds (heartbeats reach any
// replica through the database, so the server-rendered page is the one source of truth), and
// the dataset page its job table while an export runs: whatever carries data-refresh, with the
// ids to replace in data-refresh-ids.
function setupFleet() {
  const table = document.querySelector("[data-refresh]");
  if (!table) return;
  const every = 1000 * Number(table.dataset.refresh || 10);
  const ids = (table.dataset.refreshIds || "fleet fleet-summary").split(" ");
  setInterval(async () => {
    try {
      const res = await fetch(location.pathname, { credentials: "same-origin" });
      if (!res.ok) return;
      const fresh = new DOMParser().parseFromString(await res.text(), "text/html");
      for (const id of ids) {
        const next = fresh.getElementById(id), now = document.getElementById(id);
        if (next && now) now.replaceWith(next);
      }
    } catch (e) { /* the next reload tries again */ }
  }, every);
}

document.addEventListener("DOMContentLoaded", () => { setupQueue(); setupViewer(); setupForms(); setupFleet(); });
