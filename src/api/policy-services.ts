import type { HandlerContext } from "@connectrpc/connect";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { ResourceOwnerType } from "@zitadel/proto/zitadel/settings/v2/settings_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";
import type { App } from "../app/app.ts";
import type { Details } from "../app/details.ts";
import type { EffectivePolicies } from "../app/policies.ts";
import type { LockoutPolicy, PasswordComplexityPolicy } from "../domain/policy.ts";
import { principalOf } from "./context.ts";
import { ts } from "./convert.ts";
import { unimplementedExcept } from "./unimplemented.ts";

// ZITADEL's management API acts on the organization the x-zitadel-orgid header names, else
// on the caller's own.
const orgOf = (ctx: HandlerContext) => ctx.requestHeader.get("x-zitadel-orgid") || principalOf(ctx).orgId;

const v1Details = (d: Details) => ({
  sequence: BigInt(d.sequence),
  changeDate: ts(d.changeDate),
  creationDate: ts(d.changeDate),
  resourceOwner: d.resourceOwner,
});

const complexityOf = (r: {
  minLength: bigint;
  hasUppercase: boolean;
  hasLowercase: boolean;
  hasNumber: boolean;
  hasSymbol: boolean;
}): PasswordComplexityPolicy => ({
  minLength: Number(r.minLength),
  hasUppercase: r.hasUppercase,
  hasLowercase: r.hasLowercase,
  hasNumber: r.hasNumber,
  hasSymbol: r.hasSymbol,
});

const lockoutOf = (r: { maxPasswordAttempts: number; maxOtpAttempts: number }): LockoutPolicy => ({
  maxPasswordAttempts: r.maxPasswordAttempts,
  maxOtpAttempts: r.maxOtpAttempts,
});

const complexityOut = (p: PasswordComplexityPolicy, isDefault: boolean) => ({
  minLength: BigInt(p.minLength),
  hasUppercase: p.hasUppercase,
  hasLowercase: p.hasLowercase,
  hasNumber: p.hasNumber,
  hasSymbol: p.hasSymbol,
  isDefault,
});

const lockoutOut = (p: LockoutPolicy, isDefault: boolean) => ({
  maxPasswordAttempts: BigInt(p.maxPasswordAttempts),
  maxOtpAttempts: BigInt(p.maxOtpAttempts),
  isDefault,
});

// The organization's password complexity and lockout policies, the only part of ZITADEL's
// v1 management API that Latchkey serves.
export function managementService(app: App) {
  const orgDetails = (p: EffectivePolicies) => ({
    sequence: BigInt(p.org.sequence),
    resourceOwner: p.org.id,
  });
  const instanceDetails = () => ({ sequence: 0n, resourceOwner: app.instanceId });
  return unimplementedExcept(ManagementService, {
    async getPasswordComplexityPolicy(_req, ctx) {
      const p = await app.policies.read(principalOf(ctx), orgOf(ctx));
      const details = p.ownComplexity ? orgDetails(p) : instanceDetails();
      return {
        policy: { details, ...complexityOut(p.passwordComplexity, !p.ownComplexity) },
        isDefault: !p.ownComplexity,
      };
    },
    async getDefaultPasswordComplexityPolicy() {
      return {
        policy: {
          details: instanceDetails(),
          ...complexityOut(app.policies.defaults().passwordComplexity, true),
        },
      };
    },
    async addCustomPasswordComplexityPolicy(req, ctx) {
      const d = await app.policies.addComplexity(principalOf(ctx), orgOf(ctx), complexityOf(req));
      return { details: v1Details(d) };
    },
    async updateCustomPasswordComplexityPolicy(req, ctx) {
      const d = await app.policies.changeComplexity(principalOf(ctx), orgOf(ctx), complexityOf(req));
      return { details: v1Details(d) };
    },
    async resetPasswordComplexityPolicyToDefault(_req, ctx) {
      return { details: v1Details(await app.policies.removeComplexity(principalOf(ctx), orgOf(ctx))) };
    },
    async getLockoutPolicy(_req, ctx) {
      const p = await app.policies.read(principalOf(ctx), orgOf(ctx));
      const details = p.ownLockout ? orgDetails(p) : instanceDetails();
      return { policy: { details, ...lockoutOut(p.lockout, !p.ownLockout) }, isDefault: !p.ownLockout };
    },
    async getDefaultLockoutPolicy() {
      return { policy: { details: instanceDetails(), ...lockoutOut(app.policies.defaults().lockout, true) } };
    },
    async addCustomLockoutPolicy(req, ctx) {
      return {
        details: v1Details(await app.policies.addLockout(principalOf(ctx), orgOf(ctx), lockoutOf(req))),
      };
    },
    async updateCustomLockoutPolicy(req, ctx) {
      return {
        details: v1Details(await app.policies.changeLockout(principalOf(ctx), orgOf(ctx), lockoutOf(req))),
      };
    },
    async resetLockoutPolicyToDefault(_req, ctx) {
      return { details: v1Details(await app.policies.removeLockout(principalOf(ctx), orgOf(ctx))) };
    },
  });
}

// The settings a login UI reads before it asks for a password: those in force for the
// organization named (the caller's when none), or the instance's.
export function settingsService(app: App) {
  async function resolve(
    ctx: HandlerContext,
    request: { ctx?: { resourceOwner: { case?: string; value?: unknown } } },
  ) {
    const owner = request.ctx?.resourceOwner;
    if (owner?.case === "instance")
      return { policies: null, details: { sequence: 0n, resourceOwner: app.instanceId } };
    const orgId = owner?.case === "orgId" ? String(owner.value) : principalOf(ctx).orgId;
    const p = await app.policies.effective(orgId);
    return { policies: p, details: { sequence: BigInt(p.org.sequence), resourceOwner: orgId } };
  }
  return unimplementedExcept(SettingsService, {
    async getPasswordComplexitySettings(req, ctx) {
      const { policies, details } = await resolve(ctx, req);
      const own = policies?.ownComplexity ?? false;
      const p = policies?.passwordComplexity ?? app.policies.defaults().passwordComplexity;
      return {
        details,
        settings: {
          minLength: BigInt(p.minLength),
          requiresUppercase: p.hasUppercase,
          requiresLowercase: p.hasLowercase,
          requiresNumber: p.hasNumber,
          requiresSymbol: p.hasSymbol,
          resourceOwnerType: own ? ResourceOwnerType.ORG : ResourceOwnerType.INSTANCE,
        },
      };
    },
    async getLockoutSettings(req, ctx) {
      const { policies, details } = await resolve(ctx, req);
      const own = policies?.ownLockout ?? false;
      const p = policies?.lockout ?? app.policies.defaults().lockout;
      return {
        details,
        settings: {
          maxPasswordAttempts: BigInt(p.maxPasswordAttempts),
          maxOtpAttempts: BigInt(p.maxOtpAttempts),
          resourceOwnerType: own ? ResourceOwnerType.ORG : ResourceOwnerType.INSTANCE,
        },
      };
    },
  });
}
