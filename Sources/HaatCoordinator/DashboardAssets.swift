/// The dashboard's script and style, served as files of their own so the pages' policy can
/// forbid inline script and style. The script builds every element with `textContent`
/// (never HTML from data) and shows charts as images.
enum DashboardAssets {
  static let script = #"""
    "use strict";
    const main = document.getElementById("main");
    const status = document.getElementById("status");
    const page = document.body.dataset.page;

    function el(tag, attributes, ...children) {
      const element = document.createElement(tag);
      for (const [key, value] of Object.entries(attributes || {})) {
        if (key === "class") element.className = value; else element.setAttribute(key, value);
      }
      for (const child of children) {
        element.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
      return element;
    }

    function table(columns, rows, numeric, totalLast, id) {
      const head = el("tr", {}, ...columns.map((c, i) => el("th", numeric.includes(i) ? { class: "num" } : {}, c)));
      const body = rows.map((row, r) => el("tr", totalLast && r === rows.length - 1 ? { class: "total" } : {},
        ...row.map((cell, i) => cell instanceof Node ? el("td", {}, cell)
          : el("td", numeric.includes(i) ? { class: "num" } : {}, cell))));
      return el("table", id ? { id } : {}, el("thead", {}, head), el("tbody", {}, ...body));
    }

    function bytes(n) {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
      return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
    }

    function ago(ms) { return ms < 1000 ? "now" : (ms / 1000).toFixed(1) + " s ago"; }

    function progress(job) {
      const finished = job.done + job.dead + job.cancelled;
      return el("span", { class: "progress" },
        el("progress", { max: String(Math.max(job.total, 1)), value: String(finished) }),
        " " + finished + "/" + job.total);
    }

    function state(text) { return el("span", { class: "state state-" + text }, text); }

    function renderCluster(data) {
      const byState = {};
      for (const w of data.workers) byState[w.state] = (byState[w.state] || 0) + 1;
      const summary = Object.entries(byState).map(([s, n]) => n + " " + s).join(", ") || "none";
      const queue = data.queue.map(q => q.pool + ": " + q.ready + " ready" +
        (q.ready > 0 ? " (oldest " + q.oldest_seconds.toFixed(0) + " s)" : "")).join(" · ");
      main.replaceChildren(
        el("h1", {}, "Cluster"),
        el("p", { id: "summary" }, "Workers: " + summary + " — queue: " + queue),
        el("h2", {}, "Workers"),
        data.workers.length === 0 ? el("p", {}, "No worker has connected.") :
        table(["worker", "host", "state", "slots", "leases", "done", "failed", "RSS", "heartbeat"],
          data.workers.map(w => [w.id, w.host, state(w.state), w.busy + "/" + w.slots, w.leases, w.done, w.failed,
            bytes(w.rss_bytes), ago(w.heartbeat_ago_ms)]), [4, 5, 6, 7], false, "workers"),
        el("h2", {}, "Jobs"),
        data.jobs.length === 0 ? el("p", {}, "No jobs yet.") :
        table(["job", "name", "state", "progress", "running", "dead", "created"],
          data.jobs.map(j => [el("a", { href: "/jobs/" + encodeURIComponent(j.id) }, j.id), j.name, state(j.state),
            progress(j), j.leased, j.dead, new Date(j.created_ms).toLocaleString()]), [0, 4, 5], false, "jobs"));
    }

    function renderJob(data) {
      const job = data.job;
      const parts = [
        el("h1", {}, "Job " + job.id + ": " + job.name),
        el("p", { id: "job-state" }, state(job.state), " ", progress(job),
          " — " + job.leased + " running, " + job.ready + " ready, " + job.scheduled + " scheduled, " +
          job.dead + " dead"),
      ];
      if (data.error) parts.push(el("p", { class: "error" }, data.error));
      if (data.tables.length > 0 || data.charts.length > 0) {
        parts.push(el("h2", {}, "Report"));
        if (data.summary) parts.push(el("p", {}, data.summary));
        for (const t of data.tables) {
          parts.push(el("h3", {}, t.name), table(t.columns, t.rows, t.numeric, t.total_last, "report-" + t.name));
          for (const note of t.notes) parts.push(el("pre", { class: "note" }, note));
        }
        for (const c of data.charts) {
          parts.push(el("h3", {}, c.name + " (chart)"));
          parts.push(el("img", { class: "chart", alt: c.name, src: "data:image/svg+xml;charset=utf-8," +
            encodeURIComponent(c.svg) }));
        }
      }
      parts.push(el("h2", {}, "Tasks"));
      if (data.tasks.length >= data.tasks_shown) parts.push(el("p", {}, "The first " + data.tasks_shown + " tasks."));
      parts.push(table(["#", "source", "state", "worker", "attempt", "last error"],
        data.tasks.map(t => [t.index, t.source, state(t.state), t.worker, t.attempt, t.error]), [0, 4], false, "tasks"));
      main.replaceChildren(...parts);
    }

    async function refresh() {
      const api = page === "job"
        ? "/api/jobs/" + encodeURIComponent(location.pathname.split("/").filter(Boolean).pop())
        : "/api/cluster";
      try {
        const response = await fetch(api, { cache: "no-store" });
        if (!response.ok) throw new Error(response.status + " " + (await response.text()));
        const data = await response.json();
        if (page === "job") renderJob(data); else renderCluster(data);
        status.textContent = "updated " + new Date().toLocaleTimeString();
        status.className = "";
      } catch (error) {
        status.textContent = "cannot reach the coordinator: " + error.message;
        status.className = "error";
      }
    }

    refresh();
    setInterval(refresh, 1000);
    """#

  static let style = """
    body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
    header { background: #1d3b53; color: #fff; padding: 8px 16px; display: flex; gap: 16px; align-items: baseline; }
    header a { color: #fff; font-weight: 600; text-decoration: none; }
    #status { font-size: 12px; opacity: .85; }
    #status.error, .error { color: #b3261e; }
    header #status.error { color: #ffd6d2; }
    main { padding: 8px 16px 32px; }
    h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; } h3 { font-size: 14px; }
    table { border-collapse: collapse; background: #fff; margin: 4px 0 12px; }
    th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6ea; text-align: left; white-space: nowrap; }
    th { background: #eef1f4; font-weight: 600; }
    .num { text-align: right; font-variant-numeric: tabular-nums; }
    tr.total td { border-top: 2px solid #9aa5b1; font-weight: 600; }
    progress { width: 140px; vertical-align: middle; }
    .state { padding: 1px 6px; border-radius: 8px; background: #e3e6ea; font-size: 12px; }
    .state-healthy, .state-succeeded, .state-done { background: #d8f0dc; }
    .state-running, .state-leased { background: #dde9fb; }
    .state-lost, .state-failed, .state-dead, .state-stalled { background: #fbdcd8; }
    .state-partial, .state-draining, .state-scheduled { background: #fbefd0; }
    pre.note { background: #fff; padding: 8px; border: 1px solid #e3e6ea; overflow-x: auto; }
    img.chart { max-width: 100%; background: #fff; border: 1px solid #e3e6ea; }
    """
}
