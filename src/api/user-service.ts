import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { SetHumanEmail } from "@zitadel/proto/zitadel/user/v2/email_pb.js";
import type { SetHumanPhone } from "@zitadel/proto/zitadel/user/v2/phone_pb.js";
import type { SetHumanProfile } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import type { App } from "../app/app.ts";
import type { PasswordRequest } from "../app/passwords.ts";
import type { PhoneRequest, PhoneVerification } from "../app/phone-codes.ts";
import type { NewHumanRequest, PasswordVerification } from "../app/users.ts";
import type { Profile } from "../domain/user/events.ts";
import { principalOf } from "./context.ts";
import { dateOf, detailsOut, ts, userOut } from "./convert.ts";
import { unimplemented } from "./unimplemented.ts";
import { userListRequest } from "./user-search.ts";

const notYet = (what: string) =>
  new ConnectError(`${what} is not implemented by Latchkey yet`, Code.Unimplemented);

function verificationOf(v: { case: string | undefined; value?: unknown }): PhoneVerification {
  if (v.case === "isVerified" && v.value === true) return "verified";
  if (v.case === "returnCode") return "return";
  return "send";
}

const phoneOf = (p: SetHumanPhone | undefined): PhoneRequest | undefined =>
  p && p.phone !== "" ? { phone: p.phone, verification: verificationOf(p.verification) } : undefined;

const profileOf = (p: SetHumanProfile | undefined): Profile => ({
  givenName: p?.givenName ?? "",
  familyName: p?.familyName ?? "",
  nickName: p?.nickName ?? "",
  displayName: p?.displayName || `${p?.givenName ?? ""} ${p?.familyName ?? ""}`.trim(),
  preferredLanguage: p?.preferredLanguage ?? "",
  gender: p?.gender ?? 0,
});

// Latchkey sends no email: an address is stored verified or unverified, and a code for it
// cannot be handed out.
function emailOf(e: SetHumanEmail | undefined) {
  if (e?.verification.case === "returnCode") throw notYet("Email verification codes");
  return {
    email: e?.email ?? "",
    emailVerified: e?.verification.case === "isVerified" && e.verification.value,
  };
}

function passwordOf(p: HumanFields["passwordType"]): PasswordRequest | undefined {
  if (p?.case === "password") return { password: p.value.password, changeRequired: p.value.changeRequired };
  if (p?.case === "hashedPassword") return { hash: p.value.hash, changeRequired: p.value.changeRequired };
  return undefined;
}

interface HumanFields {
  profile?: SetHumanProfile;
  email?: SetHumanEmail;
  phone?: SetHumanPhone;
  passwordType?:
    | { case: "password"; value: { password: string; changeRequired: boolean } }
    | { case: "hashedPassword"; value: { hash: string; changeRequired: boolean } }
    | { case: undefined; value?: undefined };
  idpLinks: unknown[];
  totpSecret?: string | undefined;
  metadata: unknown[];
}

export function humanRequest(
  h: HumanFields,
  ids: { userId?: string | undefined; orgId?: string | undefined; username?: string | undefined },
): NewHumanRequest {
  if (h.idpLinks.length > 0) throw notYet("IDP links");
  if (h.totpSecret) throw notYet("TOTP");
  if (h.metadata.length > 0) throw notYet("User metadata");
  return {
    ...ids,
    profile: profileOf(h.profile),
    ...emailOf(h.email),
    phone: phoneOf(h.phone),
    password: passwordOf(h.passwordType),
  };
}

export function userService(app: App) {
  const p = (ctx: HandlerContext) => principalOf(ctx);
  return {
    async addHumanUser(req, ctx) {
      const org = req.organization?.org;
      if (org?.case === "orgDomain") throw notYet("Selecting the organization by domain");
      const r = await app.users.addHuman(
        p(ctx),
        humanRequest(req, { userId: req.userId, orgId: org?.value, username: req.username }),
      );
      return { userId: r.userId, details: detailsOut(r.details), phoneCode: r.phoneCode };
    },

    async createUser(req, ctx) {
      const ids = { userId: req.userId, orgId: req.organizationId, username: req.username };
      if (req.userType.case === "machine") {
        const m = req.userType.value;
        const r = await app.users.addMachine(p(ctx), {
          ...ids,
          name: m.name,
          description: m.description ?? "",
        });
        return { id: r.userId, creationDate: ts(r.created) };
      }
      if (req.userType.case !== "human")
        throw new ConnectError("Either human or machine must be set", Code.InvalidArgument);
      if (req.organizationId === "")
        throw new ConnectError("Organization ID is required", Code.InvalidArgument);
      const r = await app.users.addHuman(p(ctx), humanRequest(req.userType.value, ids));
      return { id: r.userId, creationDate: ts(r.created), phoneCode: r.phoneCode };
    },

    async getUserByID(req, ctx) {
      const user = await app.queries.getUser(p(ctx), req.userId);
      const out = userOut(user);
      return { details: out.details, user: out };
    },

    async listUsers(req, ctx) {
      const page = await app.queries.listUsers(p(ctx), userListRequest(req));
      return {
        details: { totalResult: BigInt(page.total), timestamp: ts(app.deps.clock.now()) },
        sortingColumn: req.sortingColumn,
        result: page.users.map(userOut),
      };
    },

    async deleteUser(req, ctx) {
      return { details: detailsOut(await app.users.deleteUser(p(ctx), req.userId)) };
    },

    async setPhone(req, ctx) {
      const r = await app.users.setPhone(p(ctx), req.userId, {
        phone: req.phone,
        verification: verificationOf(req.verification),
      });
      return { details: detailsOut(r.details), verificationCode: r.code };
    },

    async verifyPhone(req, ctx) {
      return { details: detailsOut(await app.users.verifyPhone(p(ctx), req.userId, req.verificationCode)) };
    },

    async resendPhoneCode(req, ctx) {
      const v = req.verification.case === "returnCode" ? "return" : "send";
      const r = await app.users.resendPhoneCode(p(ctx), req.userId, v);
      return { details: detailsOut(r.details), verificationCode: r.code };
    },

    async removePhone(req, ctx) {
      return { details: detailsOut(await app.users.removePhone(p(ctx), req.userId)) };
    },

    async addOTPSMS(req, ctx) {
      return { details: detailsOut(await app.users.addOtpSms(p(ctx), req.userId)) };
    },

    async removeOTPSMS(req, ctx) {
      return { details: detailsOut(await app.users.removeOtpSms(p(ctx), req.userId)) };
    },

    async listAuthenticationMethodTypes(req, ctx) {
      const { user, methods } = await app.queries.authenticationMethods(p(ctx), req.userId);
      return {
        details: {
          totalResult: BigInt(methods.length),
          processedSequence: BigInt(user.sequence),
          timestamp: ts(new Date(user.changedAt ?? 0)),
        },
        authMethodTypes: methods,
      };
    },

    async setPassword(req, ctx) {
      const v = req.verification;
      const verification: PasswordVerification =
        v.case === "currentPassword"
          ? { kind: "current", password: v.value }
          : v.case === "verificationCode"
            ? { kind: "code", code: v.value }
            : { kind: "none" };
      const details = await app.users.setPassword(
        p(ctx),
        req.userId,
        {
          password: req.newPassword?.password ?? "",
          changeRequired: req.newPassword?.changeRequired ?? false,
        },
        verification,
      );
      return { details: detailsOut(details) };
    },

    async passwordReset(req, ctx) {
      if (req.medium.case === "sendLink") throw notYet("Sending password reset links");
      if (req.medium.case !== "returnCode")
        throw new ConnectError("Latchkey sends no email: ask for returnCode", Code.InvalidArgument);
      const r = await app.users.passwordReset(p(ctx), req.userId);
      return { details: detailsOut(r.details), verificationCode: r.code };
    },

    async lockUser(req, ctx) {
      return { details: detailsOut(await app.users.lockUser(p(ctx), req.userId)) };
    },

    async unlockUser(req, ctx) {
      return { details: detailsOut(await app.users.unlockUser(p(ctx), req.userId)) };
    },

    async deactivateUser(req, ctx) {
      return { details: detailsOut(await app.users.deactivateUser(p(ctx), req.userId)) };
    },

    async reactivateUser(req, ctx) {
      return { details: detailsOut(await app.users.reactivateUser(p(ctx), req.userId)) };
    },

    async addPersonalAccessToken(req, ctx) {
      const r = await app.users.addPersonalAccessToken(p(ctx), req.userId, dateOf(req.expirationDate));
      return { tokenId: r.tokenId, token: r.token, creationDate: ts(r.created) };
    },

    async removePersonalAccessToken(req, ctx) {
      const at = await app.users.removePersonalAccessToken(p(ctx), req.userId, req.tokenId);
      return { deletionDate: ts(at) };
    },

    ...unimplemented(UserService, [
      "setEmail",
      "resendEmailCode",
      "sendEmailCode",
      "verifyEmail",
      "updateUser",
      "updateHumanUser",
      "registerPasskey",
      "verifyPasskeyRegistration",
      "createPasskeyRegistrationLink",
      "listPasskeys",
      "removePasskey",
      "registerU2F",
      "verifyU2FRegistration",
      "removeU2F",
      "registerTOTP",
      "verifyTOTPRegistration",
      "removeTOTP",
      "addOTPEmail",
      "removeOTPEmail",
      "startIdentityProviderIntent",
      "retrieveIdentityProviderIntent",
      "addIDPLink",
      "listIDPLinks",
      "removeIDPLink",
      "addSecret",
      "removeSecret",
      "addKey",
      "removeKey",
      "listKeys",
      "listPersonalAccessTokens",
      "listAuthenticationFactors",
      "createInviteCode",
      "resendInviteCode",
      "verifyInviteCode",
      "humanMFAInitSkipped",
      "setUserMetadata",
      "listUserMetadata",
      "deleteUserMetadata",
    ]),
  } satisfies ServiceImpl<typeof UserService>;
}
