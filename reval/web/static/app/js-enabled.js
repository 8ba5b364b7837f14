// What nhsuk/template.jinja does with an inline script, from a file so that the
// Content-Security-Policy can refuse every inline script.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' nhsuk-frontend-supported' : '')
