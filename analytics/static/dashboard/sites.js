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
      body: JSON.stringify({
        site_id: site,
        date_range: [holder.dataset.from, holder.dataset.to],
        metrics: ["visitors", "visits"],
        dimensions: ["time:hour"],
      }),
    });
    if (!response.ok) return;
    // Yesterday and today by hour; the 24 hours up to the current one (visits counted in the hour they start).
    const hours = (await response.json()).results.filter((r) => r.dimensions[0] <= holder.dataset.now);
    const values = hours.slice(-24).map((r) => r.metrics[0]);
    sparkline(holder, values);
    const visits = hours.slice(-24).reduce((sum, r) => sum + r.metrics[1], 0); // visits add up; visitors do not
    const count = list.querySelector(`[data-count="${CSS.escape(site)}"]`);
    count.textContent = `${number.format(visits)} visits in 24 h`;
  } catch {
    // the list stays usable without its sparklines
  }
}

if (list) for (const holder of list.querySelectorAll(".spark")) draw(holder);
