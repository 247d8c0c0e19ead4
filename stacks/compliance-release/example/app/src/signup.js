// The sign-up form: collects an email address and posts it to the API.
export function signupForm() {
  return `<form action="/api/signup" method="post">
    <input type="email" name="email" required>
    <button>Sign up</button>
  </form>`;
}
