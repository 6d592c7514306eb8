// The Locations map: countries shaded by visitors (Natural Earth 1:110m, see world.js), click to filter.
import { COUNTRIES, VIEWBOX } from "./world.js";

const NS = "http://www.w3.org/2000/svg";
const names = new Intl.DisplayNames(["en"], { type: "region" });

export function countryName(code) {
  try {
    return code ? names.of(code) : "";
  } catch {
    return code;
  }
}

export function drawMap(container, rows, onPick, format) {
  container.replaceChildren();
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", VIEWBOX);
  svg.setAttribute("class", "world");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", "Visitors by country");
  const visitors = new Map(rows.map((r) => [r.dimensions[0], r.metrics[0]]));
  const top = Math.max(1, ...visitors.values());
  for (const [code, d] of Object.entries(COUNTRIES)) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    const count = visitors.get(code) || 0;
    const title = document.createElementNS(NS, "title");
    title.textContent = `${countryName(code)}: ${format(count)} visitor${count === 1 ? "" : "s"}`;
    path.append(title);
    if (count) {
      path.setAttribute("class", "visited");
      path.setAttribute("fill-opacity", String(0.2 + (0.8 * Math.log1p(count)) / Math.log1p(top)));
      path.setAttribute("tabindex", "0");
      path.setAttribute("role", "button");
      path.setAttribute("aria-label", title.textContent);
      path.addEventListener("click", () => onPick(code));
      path.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onPick(code);
        }
      });
    }
    svg.append(path);
  }
  container.append(svg);
}
