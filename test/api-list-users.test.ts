import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { TextQueryMethod } from "@zitadel/proto/zitadel/object/v2/object_pb.js";
import { type SearchQuerySchema, Type, UserFieldName } from "@zitadel/proto/zitadel/user/v2/query_pb.js";
import { type User, UserState } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

type Query = MessageInitShape<typeof SearchQuerySchema>;

const username = (value: string, method = TextQueryMethod.STARTS_WITH): Query => ({
  query: { case: "userNameQuery", value: { userName: value, method } },
});
const names = (result: User[]) => result.map((u) => u.username);
const byName = { sortingColumn: UserFieldName.USER_NAME, query: { asc: true } };

for (const db of databaseKinds) {
  describe(`ListUsers (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let orgA: string;
    let orgB: string;
    // Usernames start with a prefix of this run, so that other tests' users stay out.
    const p = `lu${Date.now().toString(36)}-`;
    const ids: Record<string, string> = {};

    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
      orgA = await newOrg(admin);
      orgB = await newOrg(admin);
      const add = async (name: string, orgId: string, email: string, phone: string | undefined) => {
        const r = await admin.users.addHumanUser({
          username: `${p}${name}`,
          organization: { org: { case: "orgId", value: orgId } },
          profile: { givenName: name, familyName: "Tester", displayName: `${name} Tester` },
          email: { email, verification: { case: "isVerified", value: true } },
          phone: phone ? { phone, verification: { case: "isVerified", value: true } } : undefined,
        });
        ids[name] = r.userId;
      };
      await add("ada", orgA, "Ada@Example.com", "+41791110001");
      await add("bob", orgA, "bob@example.org", "+41791110002");
      await add("cleo", orgB, "cleo@example.org", undefined);
      await add("dora", orgB, "dora@sample.net", "+41791110004");
      await add("gone", orgA, "gone@example.com", undefined);
      await admin.users.deleteUser({ userId: ids.gone! });
    });
    after(() => server.stop());

    for (const protocol of protocols) {
      it(`finds users by username, email and phone over ${protocol}`, async () => {
        const c = clients(server.url, server.adminToken, protocol);
        const all = await c.users.listUsers({ ...byName, queries: [username(p)] });
        assert.deepEqual(names(all.result), [`${p}ada`, `${p}bob`, `${p}cleo`, `${p}dora`]);
        assert.equal(all.details?.totalResult, 4n);
        assert.equal(all.sortingColumn, UserFieldName.USER_NAME);

        const ada = all.result[0]!;
        assert.equal(ada.userId, ids.ada);
        assert.equal(ada.details?.resourceOwner, orgA);
        assert.equal(ada.details?.sequence, 3n);
        assert.deepEqual(ada.loginNames, [`${p}ada`]);
        assert.equal(ada.type.case, "human");
        if (ada.type.case === "human") {
          assert.equal(ada.type.value.email?.email, "Ada@Example.com");
          assert.deepEqual(
            [ada.type.value.phone?.phone, ada.type.value.phone?.isVerified],
            ["+41791110001", true],
          );
          assert.equal(ada.type.value.profile?.displayName, "ada Tester");
        }

        const search = async (...queries: Query[]) =>
          names((await c.users.listUsers({ ...byName, queries: [username(p), ...queries] })).result);
        const email = (value: string, method: TextQueryMethod): Query => ({
          query: { case: "emailQuery", value: { emailAddress: value, method } },
        });
        assert.deepEqual(await search(email("ada@example.com", TextQueryMethod.EQUALS)), []);
        assert.deepEqual(await search(email("ada@example.com", TextQueryMethod.EQUALS_IGNORE_CASE)), [
          `${p}ada`,
        ]);
        assert.deepEqual(await search(email("EXAMPLE.ORG", TextQueryMethod.ENDS_WITH_IGNORE_CASE)), [
          `${p}bob`,
          `${p}cleo`,
        ]);
        assert.deepEqual(
          await search({
            query: { case: "phoneQuery", value: { number: "1110004", method: TextQueryMethod.CONTAINS } },
          }),
          [`${p}dora`],
        );
        assert.deepEqual(
          await search({
            query: {
              case: "orQuery",
              value: {
                queries: [
                  username(`${p}bo`),
                  {
                    query: {
                      case: "displayNameQuery",
                      value: { displayName: "DORA", method: TextQueryMethod.CONTAINS_IGNORE_CASE },
                    },
                  },
                ],
              },
            },
          }),
          [`${p}bob`, `${p}dora`],
        );
        assert.deepEqual(
          await search(
            { query: { case: "organizationIdQuery", value: { organizationId: orgB } } },
            { query: { case: "notQuery", value: { query: username(`${p}c`) } } },
          ),
          [`${p}dora`],
        );
        assert.deepEqual(
          await search({ query: { case: "inUserIdsQuery", value: { userIds: [ids.cleo!, ids.gone!] } } }),
          [`${p}cleo`],
        );
        assert.deepEqual(await search({ query: { case: "typeQuery", value: { type: Type.MACHINE } } }), []);
        assert.deepEqual(
          await search({
            query: {
              case: "loginNameQuery",
              value: { loginName: `${p}ADA`, method: TextQueryMethod.EQUALS_IGNORE_CASE },
            },
          }),
          [`${p}ada`],
        );
      });
    }

    it("pages and sorts as asked, and descending by id by default, as ZITADEL does", async () => {
      const page = async (offset: number, limit: number, asc: boolean) =>
        admin.users.listUsers({
          sortingColumn: UserFieldName.USER_NAME,
          query: { offset: BigInt(offset), limit, asc },
          queries: [username(p)],
        });
      const first = await page(0, 3, true);
      assert.deepEqual(names(first.result), [`${p}ada`, `${p}bob`, `${p}cleo`]);
      assert.equal(first.details?.totalResult, 4n);
      const second = await page(3, 3, true);
      assert.deepEqual(names(second.result), [`${p}dora`]);
      assert.equal(second.details?.totalResult, 4n);
      assert.deepEqual(names((await page(0, 2, false)).result), [`${p}dora`, `${p}cleo`]);
      assert.deepEqual((await page(10, 3, true)).result, []);

      const unsorted = await admin.users.listUsers({ queries: [username(p)] });
      assert.deepEqual(
        unsorted.result.map((u) => u.userId),
        [ids.dora, ids.cleo, ids.bob, ids.ada],
      );
      const byEmail = await admin.users.listUsers({
        sortingColumn: UserFieldName.EMAIL,
        query: { asc: true },
        queries: [username(p)],
      });
      assert.deepEqual(names(byEmail.result), [`${p}ada`, `${p}bob`, `${p}cleo`, `${p}dora`]);
    });

    it("refuses a limit over 1000, a query without a filter and nesting past 20", async () => {
      await expectCode(
        admin.users.listUsers({ query: { limit: 1001 } }),
        Code.InvalidArgument,
        "QUERY-4M0fs",
      );
      await admin.users.listUsers({ query: { limit: 1000 }, queries: [username(p)] });
      await expectCode(admin.users.listUsers({ queries: [{}] }), Code.InvalidArgument, "GRPC-vR9nC");
      let deep: Query = username(p);
      for (let i = 0; i < 21; i++) deep = { query: { case: "notQuery", value: { query: deep } } };
      await expectCode(admin.users.listUsers({ queries: [deep] }), Code.InvalidArgument, "USER-zsQ97");
      const many = Array.from({ length: 1001 }, (_, i) => String(i));
      await expectCode(
        admin.users.listUsers({ queries: [{ query: { case: "inUserIdsQuery", value: { userIds: many } } }] }),
        Code.InvalidArgument,
        "LK-QUERY-SIZE",
      );
    });

    it("shows a caller the users of the organizations where it holds user.read, and itself", async () => {
      // Lives in org B, manages org A.
      const managerOfA = await callerWith(admin, { orgId: orgA }, ["ORG_USER_MANAGER"], orgB);
      const viewer = await callerWith(admin, { instance: true }, ["IAM_OWNER_VIEWER"], orgA);
      const nobody = await callerWith(admin, null, [], orgA);
      const list = async (token: string, ...queries: Query[]) =>
        clients(server.url, token).users.listUsers({ ...byName, queries });

      const seen = await list(managerOfA.token, {
        query: {
          case: "orQuery",
          value: {
            queries: [
              username(p),
              { query: { case: "inUserIdsQuery", value: { userIds: [managerOfA.userId] } } },
            ],
          },
        },
      });
      assert.deepEqual(
        seen.result.map((u) => u.userId),
        [ids.ada, ids.bob, managerOfA.userId],
      );
      assert.equal(seen.details?.totalResult, 3n);
      const inB = await list(managerOfA.token, {
        query: { case: "organizationIdQuery", value: { organizationId: orgB } },
      });
      assert.deepEqual(
        inB.result.map((u) => u.userId),
        [managerOfA.userId],
      );

      assert.deepEqual(names((await list(viewer.token, username(p))).result), [
        `${p}ada`,
        `${p}bob`,
        `${p}cleo`,
        `${p}dora`,
      ]);
      await expectCode(list(nobody.token, username(p)), Code.PermissionDenied, "AUTH-AWfge");
      await expectCode(list(""), Code.Unauthenticated);
    });

    it("answers POST /v2/users with grpc-gateway's JSON", async () => {
      const r = await rest(server.url, "POST", "/v2/users", {
        token: server.adminToken,
        body: {
          query: { offset: "1", limit: 2, asc: true },
          sortingColumn: "USER_FIELD_NAME_USER_NAME",
          queries: [{ userNameQuery: { userName: p, method: "TEXT_QUERY_METHOD_STARTS_WITH" } }],
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.details.totalResult, "4");
      assert.equal(r.body.sortingColumn, "USER_FIELD_NAME_USER_NAME");
      assert.deepEqual(
        r.body.result.map((u: { username: string }) => u.username),
        [`${p}bob`, `${p}cleo`],
      );
      assert.equal(r.body.result[0].human.phone.phone, "+41791110002");
      const refused = await rest(server.url, "POST", "/v2/users", { body: {} });
      assert.equal(refused.status, 401);
      const tooMany = await rest(server.url, "POST", "/v2/users", {
        token: server.adminToken,
        body: { query: { limit: 5000 } },
      });
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.body.details[0].id, "QUERY-4M0fs");
    });

    it("filters by state", async () => {
      const user = await humanUser(admin, { orgId: orgB });
      await admin.users.lockUser({ userId: user.userId });
      const inState = async (state: UserState) =>
        (
          await admin.users.listUsers({
            queries: [
              { query: { case: "inUserIdsQuery", value: { userIds: [user.userId, ids.cleo!, ids.dora!] } } },
              { query: { case: "stateQuery", value: { state } } },
            ],
          })
        ).result.map((u) => u.userId);
      assert.deepEqual(await inState(UserState.LOCKED), [user.userId]);
      assert.deepEqual(await inState(UserState.ACTIVE), [ids.dora, ids.cleo]);
      assert.deepEqual(await inState(UserState.DELETED), []);
      const [listed] = (
        await admin.users.listUsers({
          queries: [{ query: { case: "inUserIdsQuery", value: { userIds: [user.userId] } } }],
        })
      ).result;
      assert.equal(listed?.state, UserState.LOCKED);
    });

    it("leaves deleted users out", async () => {
      const user = await humanUser(admin, { orgId: orgA });
      const find = () =>
        admin.users.listUsers({
          queries: [{ query: { case: "inUserIdsQuery", value: { userIds: [user.userId] } } }],
        });
      assert.equal((await find()).details?.totalResult, 1n);
      await admin.users.deleteUser({ userId: user.userId });
      const after = await find();
      assert.deepEqual([after.details?.totalResult, after.result], [0n, []]);
    });
  });
}
