// The list of sites: a 24-hour sparkline of visitors for each, from the Stats API.
import { sparkline } from "./chart.js";

const CSRF = document.querySelector('meta[name="csrf"]')?.content || "";
const list = document.querySelector(".sites");
const number = new Intl.NumberFormat("en");

async function draw(holder) {
  const site = holder.dataset.site;
  try {
    const response = await fetch(list.dataset.api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      credentials: "same-origin",
      body: JSON.stringify({ site_id: site, date_range: "24h", metrics: ["visitors"], dimensions: ["time:hour"] }),
    });
    if (!response.ok) return;
    const values = (await response.json()).results.map((r) => r.metrics[0]);
    sparkline(holder, values);
    const total = values.reduce((a, b) => a + b, 0);
    const count = list.querySelector(`[data-count="${CSS.escape(site)}"]`);
    count.textContent = `${number.format(total)} visitors in 24 h`;
  } catch {
    // the list stays usable without its sparklines
  }
}

if (list) for (const holder of list.querySelectorAll(".spark")) draw(holder);
