// The console in a real browser: Debian's Chromium, driven by playwright-core. scripts/test.mjs
// runs this file only where /usr/bin/chromium exists (always in CI) and says so when it does not.
// What runs in the page is given as strings: this file is type-checked without the DOM's types.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AuthenticationMethodType } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { type Clients, clients } from "./support/clients.ts";
import { callerWith, newOrg } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const screenshots = join(process.cwd(), "test-results");

describe("the console in Chromium", () => {
  let server: TestServer;
  let admin: Clients;
  let orgId: string;
  let userDataDir: string;
  let context: BrowserContext;
  let page: Page;
  let adminName: string;
  const user = { id: "", username: `grace-${Date.now().toString(36)}`, phone: "+41795551234" };
  const urls: string[] = [];
  const browserErrors: string[] = [];
  const tokens: string[] = [];

  before(async () => {
    mkdirSync(screenshots, { recursive: true });
    server = await startTestServer("sqlite");
    tokens.push(server.adminToken);
    admin = clients(server.url, server.adminToken);
    orgId = await newOrg(admin);
    const created = await admin.users.addHumanUser({
      username: user.username,
      organization: { org: { case: "orgId", value: orgId } },
      profile: { givenName: "Grace", familyName: "Hopper", displayName: "Grace Hopper" },
      email: { email: `${user.username}@example.com`, verification: { case: "isVerified", value: true } },
      phone: { phone: user.phone, verification: { case: "isVerified", value: true } },
    });
    user.id = created.userId;
    await admin.users.addOTPSMS({ userId: user.id });
    const app = server.running.app;
    const [first] = await app.deps.store.readLog(app.instanceId, 0, 1);
    adminName = (await app.deps.store.getUser(app.instanceId, first!.creator))!.username;

    userDataDir = mkdtempSync(join(tmpdir(), "latchkey-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
      locale: "en-GB",
      timezoneId: "Europe/Zurich",
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (r) => urls.push(r.url()));
    // Chromium reports a Content-Security-Policy violation as a console error.
    page.on("console", (m) => {
      if (m.type() === "error") browserErrors.push(m.text());
    });
    page.on("pageerror", (e) => browserErrors.push(String(e)));
  });

  after(async () => {
    await context?.close();
    await server?.stop();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function signIn(token: string) {
    await page.goto(`${server.url}/ui/console/#/sign-in`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Personal access token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  async function signOut() {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
  }

  const methods = () => page.getByRole("region", { name: "Authentication methods" });
  const events = () => page.getByRole("region", { name: "Recent events" });

  it("signs in with a token, finds a user and removes their OTP SMS after a confirmation", async () => {
    await signIn(server.adminToken);
    await page.getByRole("heading", { name: "Users" }).waitFor();
    await page.getByLabel("Search users").fill("hopper");
    await page.getByLabel("Search users").press("Enter");
    await page.getByText("Users 1–1 of 1").waitFor();
    await page.screenshot({ path: join(screenshots, "console-search.png"), fullPage: true });
    await page.getByRole("link", { name: `Grace Hopper ${user.username}` }).click();

    await page.getByRole("heading", { level: 1, name: "Grace Hopper" }).waitFor();
    await methods().getByText("OTP SMS").first().waitFor();
    await events()
      .getByRole("row", { name: /OTP SMS added/ })
      .waitFor();
    const phone = page.getByRole("region", { name: "Phone" });
    assert.match(await phone.innerText(), new RegExp(`\\${user.phone}\\s+Verified`));
    await page.screenshot({ path: join(screenshots, "console-user-before.png"), fullPage: true });

    await methods().getByRole("button", { name: "Remove OTP SMS…" }).click();
    const dialog = page.getByRole("dialog", { name: "Remove OTP SMS from Grace Hopper?" });
    await dialog.waitFor();
    const question = await dialog.innerText();
    assert.match(question, new RegExp(`Grace Hopper \\(${user.username}\\)`));
    assert.ok(question.includes(user.phone), question);
    assert.equal(await page.evaluate("document.activeElement?.textContent"), "Cancel");
    await page.screenshot({ path: join(screenshots, "console-confirm.png") });
    await dialog.getByRole("button", { name: "Remove OTP SMS" }).click();

    const done = page.getByRole("status").filter({ hasText: "OTP SMS removed from Grace Hopper." });
    await done.waitFor();
    assert.match(await done.innerText(), /Sequence 5, /);
    assert.equal(await page.evaluate("document.activeElement?.className"), "feedback");
    await methods().getByText("No authentication methods are set up.").waitFor();
    await methods().getByRole("button", { name: "Add OTP SMS" }).waitFor();
    // The removal, by whom; the SMS notice it sends to the number may be listed above it.
    const removal = events().getByRole("row", { name: /OTP SMS removed/ });
    assert.ok((await removal.innerText()).includes(adminName));
    await page.screenshot({ path: join(screenshots, "console-user-after.png"), fullPage: true });

    const listed = await admin.users.listAuthenticationMethodTypes({ userId: user.id });
    assert.ok(!listed.authMethodTypes.includes(AuthenticationMethodType.OTP_SMS));
  });

  it("shows a token without permission what it may not do, as a 403", async () => {
    await signOut();
    const nobody = await callerWith(admin, null, [], orgId);
    tokens.push(nobody.token);
    await signIn(nobody.token);
    await page.getByRole("heading", { name: "Users" }).waitFor();
    const refusal = page.getByRole("alert");
    await refusal.getByText("Not allowed (403)").waitFor();
    assert.match(await refusal.innerText(), /permission to list users/);
    assert.match(await refusal.innerText(), /AUTH-AWfge/);
    await page.screenshot({ path: join(screenshots, "console-403.png"), fullPage: true });

    await page.goto(`${server.url}/ui/console/#/users/${user.id}`);
    await page.getByRole("alert").getByText("Not allowed (403)").waitFor();
    await signOut();
  });

  it("refuses a wrong token at sign-in and keeps it out of the page", async () => {
    await signIn("not-a-real-token");
    await page.getByRole("alert").getByText("This token was refused (401)").waitFor();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.equal(await page.evaluate("sessionStorage.length"), 0);
  });

  it("works on a phone-sized screen and by keyboard alone", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // A link to a user asks for a token first, then leads on to that user.
    await page.goto(`${server.url}/ui/console/#/users/${user.id}`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Personal access token").fill(server.adminToken);
    await page.getByLabel("Personal access token").press("Enter");
    await page.getByRole("heading", { level: 1, name: "Grace Hopper" }).waitFor();
    await events()
      .getByRole("row", { name: /OTP SMS removed/ })
      .waitFor();
    const overflow = Number(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"));
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(screenshots, "console-user-phone.png"), fullPage: true });

    // Add by keyboard, then open the confirmation and leave it with Escape: nothing is removed.
    await methods().getByRole("button", { name: "Add OTP SMS" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("status").filter({ hasText: "OTP SMS added for Grace Hopper." }).waitFor();
    await methods().getByRole("button", { name: "Remove OTP SMS…" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
    assert.equal(await page.evaluate("document.activeElement?.textContent"), "Remove OTP SMS…");
    const listed = await admin.users.listAuthenticationMethodTypes({ userId: user.id });
    assert.deepEqual(listed.authMethodTypes, [AuthenticationMethodType.OTP_SMS]);
  });

  it("changes a phone number and verifies it with the code sent by SMS", async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    const phone = page.getByRole("region", { name: "Phone" });
    await phone.getByText("Change the phone number").click();
    await phone.getByLabel("New phone number").fill("+41 79 555 00 00");
    await phone.getByRole("button", { name: "Set phone number" }).click();
    await page.getByRole("status").filter({ hasText: "a verification code was sent by SMS" }).waitFor();
    assert.match(await phone.innerText(), /\+41795550000\s+Not verified/);
    // A new number ends OTP SMS on the old one.
    await methods().getByText("No authentication methods are set up.").waitFor();
    await server.smsIdle();
    const sent = server.sms.filter((m) => m.to === "+41795550000" && m.type === "phone_verification");
    assert.equal(sent.length, 1);
    const code = /([A-Z0-9]{6})/.exec(sent[0]!.text)?.[1] ?? "";

    await phone.getByLabel("Code from the SMS").fill("WRONG1");
    await phone.getByRole("button", { name: "Verify phone number" }).click();
    const refused = page.getByRole("alert").filter({ hasText: "Could not verify the phone number (400)" });
    await refused.waitFor();
    assert.match(await refused.innerText(), /COMMAND-eis9R/);

    await phone.getByLabel("Code from the SMS").fill(code);
    await phone.getByRole("button", { name: "Verify phone number" }).click();
    await page.getByRole("status").filter({ hasText: "Phone number verified." }).waitFor();
    assert.match(await phone.innerText(), /\+41795550000\s+Verified/);
    await events()
      .getByRole("row", { name: /Phone number verified/ })
      .first()
      .waitFor();
    const got = await admin.users.getUserByID({ userId: user.id });
    const human = got.user?.type.case === "human" ? got.user.type.value : undefined;
    assert.deepEqual([human?.phone?.phone, human?.phone?.isVerified], ["+41795550000", true]);
  });

  it("kept every token out of addresses and logs, and broke no rule of its security policy", () => {
    assert.ok(urls.length > 0);
    for (const token of tokens) {
      for (const url of urls) assert.ok(!url.includes(token), `a token in ${url}`);
      assert.ok(!server.logs.join("").includes(token), "a token in the server log");
    }
    // Chromium reports each refused request (the 400, 401 and 403 above) as a console error too.
    const unexpected = browserErrors.filter((e) => !/the server responded with a status of 40[013] /.test(e));
    assert.deepEqual(unexpected, []);
  });
});
