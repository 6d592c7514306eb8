/*
 * analytics tracker: cookieless pageviews and custom events.
 *
 *   <script defer data-domain="example.com" src="https://stats.example.com/tracker.js"></script>
 *
 * Stores nothing on the visitor's device (it only reads the opt-out flag localStorage.analytics_ignore) and
 * sends nothing from localhost, file: pages, automated browsers, or visitors asking not to be tracked.
 * Attributes: data-domain, data-api, data-hash, data-exclude="/a/*,/b/**", data-outbound,
 * data-downloads[="pdf,zip"], data-404, data-respect-signals="false". README § Tracker has the details.
 * This file is the source; the server serves its minified build, analytics/static/tracker.min.js
 * (`make tracker`; a test fails when the build and this file disagree or the build grows past 1,024 bytes
 * gzipped). Every byte counts here: prefer what minifies and compresses well.
 */
;(() => {
  const win = window
  const doc = document
  const loc = location
  const nav = navigator
  const script = doc.currentScript
  const data = script.dataset // the script's data-* attributes
  const on = (target, type, listener) => target.addEventListener(type, listener)
  const api = data.api || new URL('/api/event', script.src)
  const hashMode = 'hash' in data
  const downloads = data.downloads
  const path = () => loc.pathname + (hashMode ? loc.hash : '')
  // data-exclude globs: ** matches anything, * anything but a slash, every other character itself.
  const excluded = data.exclude?.split(/, */).map((glob) => RegExp(
    '^' + glob.replace(/\*\*|\*|[^\w/-]/g, (m) => m == '**' ? '.*' : m == '*' ? '[^/]*' : '\\' + m) + '$'
  ))
  let lastPath
  let optedOut

  const send = (name, options = {}) => {
    // The opt-out flag is read before every event, not once at load: the opt-out switch (optout.js) or another
    // tab may set or clear it while this page stays open (a single-page app, the privacy page itself). Blocked
    // storage (private modes, browser settings) throws: then no flag can have been set.
    try {
      optedOut = localStorage.analytics_ignore == 'true'
    } catch {}
    // Silent when the visitor opted out or asked not to be tracked, or is not a person on a real site. Once the
    // flag is set, nothing after it is even read.
    optedOut || (data.respectSignals != 'false' && (nav.globalPrivacyControl || nav.doNotTrack == 1)) ||
      /^(localhost|127\.|\[::1\]|$)/.test(loc.hostname) || // file: pages have no hostname
      nav.webdriver || /Headless/.test(nav.userAgent) ||
      excluded?.some((re) => re.test(path())) ||
      // sendBeacon survives leaving the page (outbound clicks); a text/plain body needs no CORS preflight.
      nav.sendBeacon(api, name = JSON.stringify({
        n: name,
        u: loc.href,
        d: data.domain,
        r: doc.referrer,
        w: win.innerWidth,
        h: hashMode,
        i: options.interactive,
        $: options.revenue,
        p: options.props, // at most 30; the server refuses more, naming the limit
      })) ||
      fetch(api, { method: 'POST', body: name, keepalive: true })
    options.callback?.()
  }

  const pageview = () => {
    if (path() != lastPath) {
      lastPath = path()
      send('pageview')
    }
  }

  // <button data-analytics-event="Signup" data-analytics-props='{"plan":"pro"}'>: an event and its properties.
  const tag = (element) =>
    send(element.dataset.analyticsEvent, { props: JSON.parse(element.dataset.analyticsProps || null) })

  const click = (event) => {
    const tagged = event.target.closest('[data-analytics-event]:not(form)') // forms count on submit
    const link = event.target.closest('a')
    if (event.button > 1) return // a right click (auxclick) opens a menu, not the link
    if (tagged) tag(tagged)
    // link.host is empty for mailto:, tel: and javascript: links.
    const name = link?.host && (
      'outbound' in data && link.host != loc.host ? 'Outbound Link: Click'
        : downloads != null && RegExp('\\.(' + (downloads.replace(/,/g, '|') ||
          'pdf|docx?|xlsx?|pptx?|csv|zip|gz|rar|dmg|exe|msi|iso') + ')$', 'i').test(link.pathname) &&
          'File Download'
    )
    if (name) send(name, { props: { url: link.href } })
  }

  const queued = win.analytics?.q
  win.analytics = send
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method]
    history[method] = (...args) => {
      original.apply(history, args)
      pageview()
    }
  }
  on(win, 'popstate', pageview) // also fired by every change of location.hash
  on(doc, 'click', click)
  on(doc, 'auxclick', click)
  on(doc, 'submit', (event) => event.target.dataset.analyticsEvent && tag(event.target))
  // A prerendered page counts only once it is shown; calls queued before the script loaded go out then.
  const show = () => {
    pageview()
    if (404 in data) send('404')
    queued?.forEach((args) => send(...args))
  }
  doc.prerendering ? on(doc, 'prerenderingchange', show) : show()
})()
