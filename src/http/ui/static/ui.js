// The web UI's only script: the Copy buttons next to pull commands. Every page works
// without it (the command is in a read-only field, ready to be selected and copied).
'use strict';
document.documentElement.classList.add('js');
document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  const field = document.getElementById(button.getAttribute('data-copy'));
  const status = document.getElementById('copy-status');
  if (!field) return;
  const say = (text) => {
    if (status) status.textContent = text;
  };
  try {
    await navigator.clipboard.writeText(field.value);
    say('Copied: ' + field.value);
  } catch {
    field.focus();
    field.select();
    say('Selected: press Ctrl+C to copy');
  }
});
