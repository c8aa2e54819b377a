// Backchannel's local interface: live sections, local times, confirmations.
// Served by the binary itself; no inline script, nothing from elsewhere.
"use strict";

(function () {
  // Adds the reader's local time beside every UTC time.
  function localTimes(root) {
    for (const t of root.querySelectorAll("time[datetime]")) {
      if (t.dataset.local) continue;
      const d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      const s = document.createElement("span");
      s.className = "local";
      s.textContent = " (" + d.toLocaleString() + " local)";
      t.after(s);
      t.dataset.local = "1";
    }
  }

  // Whether a section holds the focus or a field the reader changed.
  function busy(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    for (const f of el.querySelectorAll("input, textarea, select")) {
      if (f.type === "checkbox" || f.type === "radio") {
        if (f.checked !== f.defaultChecked) return true;
      } else if (f.type !== "hidden" && f.value !== f.defaultValue) {
        return true;
      }
    }
    return false;
  }

  // Replaces each live section with its fresh copy from the same page.
  async function refresh() {
    const r = await fetch(location.pathname + location.search, {
      credentials: "same-origin",
      // Not activity: an unattended tab must not keep the session alive.
      headers: { Accept: "text/html", "X-Backchannel-Refresh": "1" },
    });
    if (r.status === 401) {
      location.reload();
      return;
    }
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    for (const el of document.querySelectorAll("[data-live]")) {
      const fresh = doc.getElementById(el.id);
      if (!fresh) continue;
      // Never under the reader's hands: a section with a field in use or
      // filled in waits for the next change.
      if (busy(el)) continue;
      // Keep open what the reader opened (each <details> has an id).
      for (const d of el.querySelectorAll("details[open][id]")) {
        const same = fresh.querySelector("#" + CSS.escape(d.id));
        if (same) same.open = true;
      }
      el.replaceWith(fresh);
      localTimes(fresh);
    }
    const n = Number(document.body.dataset.updates || "0") + 1;
    document.body.dataset.updates = String(n);
  }

  let pending = null;
  function schedule() {
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      refresh().catch(function () {});
    }, 100);
  }

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    const question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    if (!window.EventSource) return;
    const events = new EventSource("/events");
    events.addEventListener("changed", schedule);
    events.onopen = function () {
      document.body.dataset.live = "connected";
      // Whatever changed between this page's rendering and now.
      schedule();
    };
    events.onerror = function () {
      document.body.dataset.live = "reconnecting";
    };
  });
})();
