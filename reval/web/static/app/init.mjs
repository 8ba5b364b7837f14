import { initAll } from '../nhsuk-frontend.min.js'

initAll()

// "Select all" for a table of doctors: <input data-select-all="doctor"> ticks every
// input[name=doctor] in the same table, and shows a partial selection as indeterminate.
// Without JavaScript the box is hidden and each row is ticked on its own.
for (const master of document.querySelectorAll('input[data-select-all]')) {
  const table = master.closest('table')
  const boxes = () => table.querySelectorAll(`tbody input[type=checkbox][name="${master.dataset.selectAll}"]`)
  const sync = () => {
    const all = [...boxes()]
    const ticked = all.filter((box) => box.checked).length
    master.checked = ticked > 0 && ticked === all.length
    master.indeterminate = ticked > 0 && ticked < all.length
  }
  master.addEventListener('change', () => {
    for (const box of boxes()) box.checked = master.checked
    sync()
  })
  table.addEventListener('change', (event) => {
    if (event.target !== master) sync()
  })
  sync()
}
