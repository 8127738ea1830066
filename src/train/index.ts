// Public API of src/train: each module adds its exports here.
export {};
