// Served at /extensions/hearth_test_pack/hello.js and listed by /extensions.
export const hello = "hearth";
