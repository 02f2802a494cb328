// The dashboard's sign-in (auth.adminKey): a form shown when the data answers 401, the key kept for
// this browser session once given, the form shown again (saying so) when a key is not accepted.
// Loaded before dashboard.js, which asks `key()` for every request and `show(...)` on a 401.
(function () {
  'use strict';

  var KEY_STORAGE = 'tracegate-admin-key';
  var onKey = null;

  function form() {
    return document.getElementById('sign-in');
  }

  /** The admin key given in this browser session, or null. */
  function key() {
    return window.sessionStorage.getItem(KEY_STORAGE);
  }

  /** Shows the form (a wrong key is forgotten and said to be wrong); `then` runs once a key is given. */
  function show(then) {
    var wrong = key() !== null;
    window.sessionStorage.removeItem(KEY_STORAGE);
    onKey = then;
    document.getElementById('sign-in-message').textContent = wrong
      ? 'That key was not accepted. Enter the admin key (auth.adminKey):'
      : 'This tracegate needs its admin key (auth.adminKey):';
    form().hidden = false;
    document.body.dataset.signIn = wrong ? 'wrong-key' : 'needed';
    document.getElementById('sign-in-key').focus();
  }

  document.addEventListener('DOMContentLoaded', function () {
    form().addEventListener('submit', function (e) {
      e.preventDefault();
      var input = document.getElementById('sign-in-key');
      var given = input.value.trim();
      if (!given) return;
      window.sessionStorage.setItem(KEY_STORAGE, given);
      input.value = '';
      form().hidden = true;
      delete document.body.dataset.signIn;
      var then = onKey;
      onKey = null;
      if (then) then();
    });
  });

  window.tracegateSignIn = { key: key, show: show };
})();
