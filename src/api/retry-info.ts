import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
} from "@bufbuild/protobuf/wkt";

// google.rpc.RetryInfo, the standard error detail that tells a client when to try again. No
// package we depend on ships it, so its one-field descriptor is declared here.
const file = create(FileDescriptorProtoSchema, {
  name: "google/rpc/error_details.proto",
  package: "google.rpc",
  dependency: ["google/protobuf/duration.proto"],
  syntax: "proto3",
  messageType: [
    {
      name: "RetryInfo",
      field: [
        {
          name: "retry_delay",
          jsonName: "retryDelay",
          number: 1,
          label: FieldDescriptorProto_Label.OPTIONAL,
          type: FieldDescriptorProto_Type.MESSAGE,
          typeName: ".google.protobuf.Duration",
        },
      ],
    },
  ],
});

const registry = createFileRegistry(file, (name) =>
  name === "google/protobuf/duration.proto" ? file_google_protobuf_duration : undefined,
);

export const RetryInfoSchema = registry.getMessage("google.rpc.RetryInfo") as DescMessage;

export const retryInfo = (seconds: number) => ({
  desc: RetryInfoSchema,
  value: { retryDelay: { seconds: BigInt(seconds), nanos: 0 } },
});
