/*
 * analytics opt-out switch: lets a visitor stop, and resume, being counted by tracker.js on this site.
 *
 *   <script src="https://stats.example.com/optout.js"></script>
 *
 * For the site's own privacy page. It renders, right after its own <script> tag (or at the end of the element
 * whose id is in data-target), a checkbox with the switch role, its label and a status line that screen readers
 * announce when it changes. Switched off, it sets the flag tracker.js reads before every event,
 * localStorage.analytics_ignore = 'true', on this page's origin; switched on, it removes it. It sends nothing,
 * sets no cookie and stores nothing else. Attributes: data-lang="fr|en" (default: the page's <html lang>, then
 * the browser's language; anything but French is English), data-target="element-id",
 * data-respect-signals="false" (as on the tracker). README § Opt-out switch has the details. This file is the
 * source; the server serves its minified build, analytics/static/optout.min.js (`make tracker`; a test fails
 * when the build and this file disagree or the build grows past 1,024 bytes gzipped).
 */
;(() => {
  const doc = document
  const nav = navigator
  const script = doc.currentScript
  const data = script.dataset
  const create = (tag, className) => Object.assign(doc.createElement(tag), className && { className })
  const fr = /^fr(?![a-z])/i.test(data.lang || doc.documentElement.lang || nav.language)
  const text = fr
    ? {
        lang: 'fr',
        label: 'Compter mes visites dans les statistiques de ce site',
        on: 'Vos visites sont comptées.',
        off: 'Vos visites ne sont pas comptées\u00a0: ce navigateur garde votre choix pour ce site.',
        signal: 'Vos visites ne sont pas comptées\u00a0: votre navigateur demande aux sites de ne pas vous suivre ' +
          '(Global Privacy Control ou Do Not Track).',
        unsaved: 'Ce navigateur ne laisse pas ce site enregistrer votre choix (navigation privée ou données de ' +
          'sites bloquées)\u00a0: ce bouton ne peut rien changer ici.',
      }
    : {
        lang: 'en',
        label: 'Count my visits in the statistics of this site',
        on: 'Your visits are counted.',
        off: 'Your visits are not counted: this browser keeps your choice for this site.',
        signal: 'Your visits are not counted: your browser asks sites not to track you ' +
          '(Global Privacy Control or Do Not Track).',
        unsaved: 'This browser does not let this site save your choice (private browsing or blocked site ' +
          'data): this switch cannot change anything here.',
      }
  // The tracker sends nothing while the browser sends one of these signals, unless its tag says
  // data-respect-signals="false" (this widget's own tag may say it too, when the tracker is not on this page).
  const signal = !doc.querySelector('script[data-respect-signals="false"]') &&
    (nav.globalPrivacyControl || nav.doNotTrack == 1)
  // true: opted out; false: counted; undefined: storage unavailable (any use of it throws a SecurityError where
  // the browser blocks the site's data, in some private modes, in a sandboxed frame).
  const flag = () => {
    try {
      return localStorage.analytics_ignore == 'true'
    } catch {}
  }

  const box = create('div', 'analytics-optout')
  const label = create('label')
  const input = create('input')
  const status = create('p', 'analytics-optout-status')
  box.lang = text.lang // read aloud in its own language, whatever the page's
  input.type = 'checkbox'
  input.setAttribute('role', 'switch')
  // Unique on the page, for aria-describedby: read with the switch when it gets the focus. Counted on the
  // document, not from the switches already in it: one waiting for DOMContentLoaded is not in it yet.
  doc.analyticsOptouts = (doc.analyticsOptouts || 0) + 1
  status.id = 'analytics-optout-' + (doc.analyticsOptouts - 1)
  status.setAttribute('role', 'status') // a polite live region: a change is announced once said
  input.setAttribute('aria-describedby', status.id)
  label.append(input, ' ' + text.label)
  box.append(label, status)

  // Shows what the browser really stores, read back after every change: never a choice that was not saved.
  const show = (unsaved) => {
    const ignored = flag()
    input.checked = !ignored
    input.disabled = ignored == null
    status.textContent = (signal ? text.signal : ignored ? text.off : text.on) +
      (ignored == null || unsaved ? ' ' + text.unsaved : '')
  }
  input.onchange = () => {
    const wanted = !input.checked
    // Writing throws a QuotaExceededError where storage is full or read-only: then what is read back differs.
    try {
      wanted ? localStorage.setItem('analytics_ignore', 'true') : localStorage.removeItem('analytics_ignore')
    } catch {}
    show(flag() != wanted)
  }
  // Space toggles a checkbox; Enter does too here, as on a switch button.
  input.onkeydown = (event) => {
    if (event.key == 'Enter') {
      event.preventDefault() // no implicit submission of a form around it
      input.click()
    }
  }
  addEventListener('storage', () => show()) // another tab of this site changed it
  show()
  // A data-target element further down the page is not parsed yet while a script in the <head> runs.
  const place = () => {
    const target = data.target && doc.getElementById(data.target)
    target ? target.append(box) : script.after(box) // no such element: after the tag, rather than nowhere
  }
  data.target && doc.readyState == 'loading' ? doc.addEventListener('DOMContentLoaded', place) : place()
})()
