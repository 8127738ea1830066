// Public API of src/verify: each module adds its exports here.
export {};
